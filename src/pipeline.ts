import type { Logger } from "pino";
import type { Clock } from "./clock.js";
import { Approvals, threadOf, type ApprovalRequest, type RequestStatus } from "./auth/approvals.js";
import { digestOf } from "./auth/digest.js";
import { DirectoryUnavailableError } from "./auth/directory.js";
import { inGroups } from "./auth/policy.js";
import { commandText, type RoomEvent } from "./chat/events.js";
import type { Inbox } from "./chat/inbox.js";
import { code, message, type Message } from "./chat/message.js";
import type { EventRef, Outbox } from "./chat/outbox.js";
import type { Authorizer, Decision } from "./commands/authorize.js";
import type { CommandContext, Identity, Services } from "./commands/context.js";
import type { CommandSpec, ParsedArgs, Plan } from "./commands/declare.js";
import { BREAK_GLASS, type Router } from "./commands/router.js";
import { formatDuration } from "./config/duration.js";
import type { AuditEntry, AuditFields } from "./state/store.js";

const TIMED_OUT: unique symbol = Symbol("timed out");

export type Outcome =
  "ok" | "error" | "denied" | "refused" | "invalid" | "timeout" | "unavailable" | "approval";

export interface PipelineHooks {
  commandFinished?(name: string, outcome: Outcome, ms: number): void;
  /** A break-glass run, to announce in the alert room. */
  brokeGlass?(text: string): Promise<void>;
}

/** Something that wants reactions and redactions (approvals, incidents). True: it took the event. */
export type ReactionListener = (event: RoomEvent) => Promise<boolean>;

export interface PipelineOptions {
  botUserId: string;
  prefix: string;
  commandTimeoutMs: number;
  router: Router;
  inbox: Inbox;
  outbox: Outbox;
  authorizer: Authorizer;
  services: Services;
  clock: Clock;
  log: Logger;
  reactionsOn: (
    roomId: string,
    eventId: string,
  ) => Promise<Array<{ eventId: string; sender: string; key: string }>>;
  hooks?: PipelineHooks;
}

/** A handler's context, and whether it has answered yet. */
interface Invocation {
  ctx: CommandContext;
  answered(): boolean;
}

/** Where a command's answers go: replies to the command, or the thread of its approval request. */
interface AnswerTarget {
  roomId: string;
  idPrefix: string;
  replyTo?: EventRef;
  threadRoot?: EventRef;
}

/**
 * One path for every inbound event: accepted durably, then per room, in order: parsed, identified,
 * authorized, (approved,) handled, answered. A handler's failure is reported in the room and never escapes.
 */
export class Pipeline {
  readonly approvals: Approvals;
  private readonly rooms = new Map<string, Promise<void>>();
  private readonly backgroundTasks = new Set<Promise<void>>();
  private readonly reactionListeners: ReactionListener[] = [];
  private readonly mentionPattern: RegExp;
  private accepting = true;

  constructor(private readonly opts: PipelineOptions) {
    const localpart = opts.botUserId.slice(1).split(":")[0] ?? "";
    this.mentionPattern = new RegExp(
      `^\\s*@?(${escapeRegExp(opts.botUserId)}|${escapeRegExp(localpart)})[:,]?\\s+`,
      "i",
    );
    this.approvals = new Approvals({
      store: opts.services.store,
      outbox: opts.outbox,
      clock: opts.clock,
      log: opts.log,
      botUserId: opts.botUserId,
      identify: (sender, lookup) => opts.services.identify(sender, lookup),
      stillAllowed: (identity, request) =>
        opts.authorizer.decide(identity, request.policyKeys, request.roomId).outcome !== "deny",
      reactionsOn: opts.reactionsOn,
      execute: (request, approvers) => this.executeApproved(request, approvers),
      recorded: (request, approvers) => this.recordedOutcome(request, approvers),
      audit: (entry) => this.audit(entry),
    });
    this.reactionListeners.push((event) => this.approvals.onReaction(event));
  }

  onReaction(listener: ReactionListener): void {
    this.reactionListeners.push(listener);
  }

  /** Called by a chat front end for each event of a served room. Resolves once the event is durably accepted. */
  async submit(event: RoomEvent): Promise<void> {
    if (!this.accepting || event.sender === this.opts.botUserId) return;
    if (!(await this.opts.inbox.accept(event))) return;
    this.schedule(event);
  }

  /**
   * Recovers unfinished approvals, then re-queues what a previous run accepted but did not finish
   * handling. Each room's recovery runs in its queue, ahead of its replayed events, so that a replayed
   * reaction and the recount never handle the same request at once.
   */
  async resume(events: RoomEvent[]): Promise<void> {
    const rooms = new Set((await this.approvals.unfinished()).map((r) => r.roomId));
    const recovering = [...rooms].map((roomId) =>
      this.queue(roomId, () =>
        this.approvals
          .recover(roomId)
          .catch((error: unknown) => this.opts.log.error({ err: error, roomId }, "approval recovery failed")),
      ),
    );
    for (const event of events) this.schedule(event);
    await Promise.all(recovering);
  }

  /** Stops taking new events; resolves when what was accepted has been handled. */
  async stop(): Promise<void> {
    this.accepting = false;
    this.approvals.stop();
    await this.idle();
  }

  /** Resolves when every accepted event is handled and every background task has ended. */
  async idle(): Promise<void> {
    while (this.rooms.size > 0 || this.backgroundTasks.size > 0) {
      await Promise.allSettled([...this.rooms.values(), ...this.backgroundTasks]);
    }
  }

  private schedule(event: RoomEvent): void {
    void this.queue(event.roomId, () =>
      this.handle(event)
        .catch((error: unknown) =>
          this.opts.log.error({ err: error, event: event.eventId }, "event handling failed"),
        )
        .then(() => this.opts.inbox.done(event.eventId))
        .catch((error: unknown) => this.opts.log.error({ err: error }, "could not mark event as processed")),
    );
  }

  /** Runs `task` (which must not throw) after what is queued for the room; resolves when it has run. */
  private queue(roomId: string, task: () => Promise<void>): Promise<void> {
    const previous = this.rooms.get(roomId) ?? Promise.resolve();
    const next = previous.then(task);
    this.rooms.set(roomId, next);
    void next.then(() => {
      if (this.rooms.get(roomId) === next) this.rooms.delete(roomId);
    });
    return next;
  }

  private async handle(event: RoomEvent): Promise<void> {
    if (event.type === "m.reaction" || event.type === "m.room.redaction") {
      for (const listener of this.reactionListeners) if (await listener(event)) return;
      return;
    }
    const line = this.commandLine(event);
    if (line !== undefined) await this.runCommand(event, line);
  }

  private commandLine(event: RoomEvent): string | undefined {
    const body = commandText(event);
    if (body === undefined) return undefined;
    if (body.startsWith(this.opts.prefix)) return body.slice(this.opts.prefix.length);
    const match = this.mentionPattern.exec(body);
    if (match) return body.slice(match[0].length);
    const mentions = event.content["m.mentions"] as { user_ids?: unknown } | undefined;
    const mentioned = Array.isArray(mentions?.user_ids) && mentions.user_ids.includes(this.opts.botUserId);
    return mentioned ? body.replace(/^[^:]*:\s*/, "") : undefined;
  }

  /**
   * Runs `line` as if `event.sender` had typed it, answering in the thread of `threadRoot`: a
   * suggested action taken by reaction goes through the same authorization and approval as typed.
   * Call it from a reaction listener (it runs inside the room's queue).
   */
  runOnBehalf(event: RoomEvent, line: string, threadRoot: EventRef): Promise<void> {
    return this.runCommand(event, line, threadRoot);
  }

  private async runCommand(event: RoomEvent, line: string, threadRoot?: EventRef): Promise<void> {
    const { outbox, router, services, authorizer } = this.opts;
    const started = performance.now();
    const target: AnswerTarget = {
      roomId: event.roomId,
      idPrefix: `${event.eventId}#`,
      ...(threadRoot ? { threadRoot } : { replyTo: event.eventId }),
    };
    const finish = (name: string, outcome: Outcome) =>
      this.opts.hooks?.commandFinished?.(name, outcome, performance.now() - started);

    if (!threadRoot)
      await outbox.react(event.roomId, event.eventId, "👀", {
        id: `${event.eventId}#seen`,
        lane: `${event.eventId}#seen`,
      });
    const resolution = router.resolve(line);
    if (resolution.kind === "error") {
      await this.answer(target, 0, message(resolution.message));
      return finish(resolution.spec?.name ?? "unknown", "invalid");
    }
    const { spec, args, policyKeys } = resolution;
    const shown = `${this.opts.prefix}${line.trim()}`;

    let identity: Identity;
    let decision: Decision;
    try {
      identity = await services.identify(event.sender);
      decision = authorizer.decide(identity, policyKeys, event.roomId);
    } catch (error) {
      if (!(error instanceof DirectoryUnavailableError)) throw error;
      await this.answer(target, 0, message(`⛔ ${error.message}; nothing was done.`));
      return finish(spec.name, "unavailable");
    }
    const base = { actor: event.sender, roomId: event.roomId, command: shown, args: withoutBreakGlass(args) };
    if (decision.outcome === "deny") {
      await this.answer(target, 0, message(`⛔ ${decision.reason}`));
      await this.audit({ kind: "command.denied", ...base, result: decision.reason });
      return finish(spec.name, "denied");
    }
    const invocation = this.context(spec, identity, target, event.originServerTs);
    const reason = typeof args[BREAK_GLASS] === "string" ? (args[BREAK_GLASS] as string) : undefined;

    if (decision.outcome === "approval" && reason === undefined) {
      const plan = await this.planOrRefuse(spec, invocation, args, shown);
      if (!plan) return finish(spec.name, "refused");
      await this.approvals.open({
        id: `req-${event.eventId.replace(/[^A-Za-z0-9]/g, "").slice(0, 12)}`,
        roomId: event.roomId,
        commandEventId: event.eventId,
        requester: event.sender,
        command: spec.name,
        line: shown,
        args,
        policyKeys,
        approval: decision.approval,
        summary: plan.summary,
        digest: digestOf(plan.facts),
        ...(threadRoot ? { threadRoot } : {}),
      });
      return finish(spec.name, "approval");
    }
    if (decision.outcome === "approval") {
      const allowed =
        decision.rule.break_glass && inGroups(identity.user?.groups ?? [], decision.rule.break_glass);
      if (!allowed) {
        await this.answer(
          target,
          0,
          message(`⛔ ${code(`--${BREAK_GLASS}`)} is not allowed to you for ${code(spec.name)}.`),
        );
        await this.audit({ kind: "command.denied", ...base, result: "break-glass not allowed" });
        return finish(spec.name, "denied");
      }
      await this.opts.hooks?.brokeGlass?.(
        `🚨 **Break-glass**: ${event.sender} ran ${code(shown)} without approval. Reason: ${reason}`,
      );
    }
    const outcome = await this.invoke(spec, invocation, args);
    await this.audit({
      kind: "command",
      ...base,
      result: outcome.outcome,
      ms: Math.round(performance.now() - started),
      ...(reason !== undefined ? { breakGlass: reason, review: true } : {}),
    });
    finish(spec.name, outcome.outcome);
  }

  /**
   * Plans a command; a plan that refuses (a pre-flight check, a name that does not exist) is answered
   * with its reason, and nothing runs.
   */
  private async planOrRefuse(
    spec: CommandSpec,
    { ctx, answered }: Invocation,
    args: ParsedArgs,
    line: string,
  ): Promise<Plan | undefined> {
    try {
      return await planFor(spec, ctx, args, line);
    } catch (error) {
      this.opts.log.warn({ err: error, command: spec.name }, "command refused at planning");
      const why = errorText(error).replace(/([^.!?])$/, "$1.");
      if (!answered()) await ctx.reply(message(`⛔ ${code(spec.name)} refused: ${why} Nothing was done.`));
      return undefined;
    }
  }

  /**
   * What the action journal recorded for an approved request (its action's ID is the request's):
   * "none" if it never began, "running" if not finished yet, else the outcome to show.
   */
  private async recordedOutcome(
    request: ApprovalRequest,
    approvers: string[],
  ): Promise<"none" | "running" | { status: RequestStatus; outcome: string }> {
    const record = await this.opts.services.journal.get(request.id);
    if (!record) return "none";
    const by = `Approved by ${approvers.join(", ")}`;
    switch (record.status) {
      case "running":
        return "running";
      case "succeeded":
        return { status: "done", outcome: `${by}; done (details in the thread).` };
      case "failed":
        return { status: "failed", outcome: `${by}; failed: ${record.error ?? "error"}.` };
      case "interrupted":
        return { status: "failed", outcome: `${by}; interrupted by a restart (see the room).` };
    }
  }

  /** Runs an approved request once: fresh plan, same digest, through the action journal. */
  private async executeApproved(
    request: ApprovalRequest,
    approvers: string[],
  ): Promise<{ status: RequestStatus; outcome: string }> {
    const { router, services } = this.opts;
    const spec = router.find(request.command);
    if (!spec)
      return { status: "not-run", outcome: `Not run: no command ${code(request.command)} any more.` };
    const identity = await services.identify(request.requester, { fresh: true });
    const target: AnswerTarget = {
      roomId: request.roomId,
      idPrefix: `${request.id}#run`,
      threadRoot: threadOf(request),
    };
    const invocation = this.context(spec, identity, target, request.createdAt);
    const plan = await this.planOrRefuse(spec, invocation, request.args, request.line);
    if (!plan)
      return { status: "not-run", outcome: "Not run: the pre-flight check refused it (see the thread)." };
    if (digestOf(plan.facts) !== request.digest) {
      await this.answer(
        target,
        0,
        message(
          `The plan changed since it was approved. It was:\n\n${request.summary}\n\nIt is now:\n\n${plan.summary}`,
        ),
      );
      const again = `${request.id}.2`;
      const decision = this.opts.authorizer.decide(identity, request.policyKeys, request.roomId);
      if (decision.outcome === "approval" && !(await this.approvals.load(again))) {
        await this.approvals.open({
          ...request,
          id: again,
          approval: decision.approval,
          summary: plan.summary,
          digest: digestOf(plan.facts),
        });
      }
      return {
        status: "not-run",
        outcome: "Not run: the plan changed since it was approved; a new request follows.",
      };
    }
    const { record, fresh } = await services.journal.begin({
      id: request.id,
      kind: spec.name,
      args: withoutBreakGlass(request.args),
      requester: request.requester,
      roomId: request.roomId,
    });
    if (!fresh) return { status: "not-run", outcome: `Already ${record.status}; not run again.` };
    const result = await this.invoke(spec, invocation, request.args, plan);
    await services.journal.finish(request.id, result.outcome === "ok" ? "succeeded" : "failed", result.error);
    await this.audit({
      kind: "command",
      actor: request.requester,
      roomId: request.roomId,
      command: request.line,
      args: withoutBreakGlass(request.args),
      digest: request.digest,
      approvers,
      result: result.outcome,
    });
    return result.outcome === "ok"
      ? { status: "done", outcome: `Approved by ${approvers.join(", ")}; done (details in the thread).` }
      : {
          status: "failed",
          outcome: `Approved by ${approvers.join(", ")}; failed: ${result.error ?? result.outcome}.`,
        };
  }

  private context(spec: CommandSpec, identity: Identity, target: AnswerTarget, sentAt: number): Invocation {
    let replies = 0;
    const ctx: CommandContext = {
      command: spec,
      identity,
      roomId: target.roomId,
      eventId: target.replyTo ?? target.threadRoot ?? "",
      sentAt,
      receivedAt: this.opts.clock.now(),
      prefix: this.opts.prefix,
      services: this.opts.services,
      reply: (msg) => this.answer(target, replies++, msg),
      edit: (id, msg) => this.opts.outbox.edit(target.roomId, id, msg),
      thread: (root, msg) =>
        this.opts.outbox.send(target.roomId, msg, {
          id: `${target.idPrefix}t${replies++}`,
          threadRoot: root,
        }),
      background: (label, task) => this.background(target, label, task),
    };
    return { ctx, answered: () => replies > 0 };
  }

  /** Replies are numbered per command, so one replayed after a crash does not post twice. */
  private answer(target: AnswerTarget, n: number, msg: Message): Promise<string> {
    return this.opts.outbox.send(target.roomId, msg, {
      id: `${target.idPrefix}${n}`,
      // A command's answers stay in order; different commands' answers may overtake each other.
      lane: target.idPrefix,
      ...(target.threadRoot ? { threadRoot: target.threadRoot } : { replyTo: target.replyTo! }),
    });
  }

  private async invoke(
    spec: CommandSpec,
    { ctx, answered }: Invocation,
    args: ParsedArgs,
    plan?: Plan,
  ): Promise<{ outcome: Outcome; error?: string }> {
    const timeout = new AbortController();
    try {
      const result = await Promise.race<Message | void | typeof TIMED_OUT>([
        spec.run(ctx, args, plan),
        // Aborted once the race is over; that rejection is expected and ignored.
        this.opts.clock.sleep(this.opts.commandTimeoutMs, timeout.signal).then(
          (): typeof TIMED_OUT => TIMED_OUT,
          () => undefined,
        ),
      ]);
      if (result === TIMED_OUT) {
        const text = `${code(spec.name)} did not finish within ${formatDuration(this.opts.commandTimeoutMs)}; it was abandoned.`;
        await ctx.reply(message(`⏱️ ${text}`));
        return { outcome: "timeout", error: text };
      }
      if (result) await ctx.reply(result);
      else if (!answered()) await ctx.reply(message("✅ Done."));
      return { outcome: "ok" };
    } catch (error) {
      const ref = ctx.eventId.replace(/[^A-Za-z0-9]/g, "").slice(0, 8);
      this.opts.log.error({ err: error, command: spec.name, ref }, "command failed");
      await ctx.reply(message(`❌ ${code(spec.name)} failed: ${errorText(error)} (ref ${code(ref)})`));
      return { outcome: "error", error: errorText(error) };
    } finally {
      timeout.abort();
    }
  }

  private background(target: AnswerTarget, label: string, task: () => Promise<void>): void {
    const run = (async () => {
      try {
        await task();
      } catch (error) {
        this.opts.log.error({ err: error, task: label }, "background task failed");
        await this.opts.outbox.send(target.roomId, message(`❌ ${label} failed: ${errorText(error)}`), {
          ...(target.threadRoot ? { threadRoot: target.threadRoot } : { replyTo: target.replyTo! }),
        });
      }
    })();
    this.backgroundTasks.add(run);
    void run.finally(() => this.backgroundTasks.delete(run));
  }

  private async audit(entry: AuditFields): Promise<void> {
    const full: AuditEntry = { at: this.opts.clock.now(), ...entry };
    this.opts.log.info({ audit: full }, "audit");
    await this.opts.services.store.appendAudit(full);
  }
}

/** The handler's plan, or, for a command without one, the command itself. */
async function planFor(
  spec: CommandSpec,
  ctx: CommandContext,
  args: ParsedArgs,
  line: string,
): Promise<Plan> {
  if (spec.plan) return spec.plan(ctx, args);
  return { summary: `Will run ${code(line)}.`, facts: { command: spec.name, args: withoutBreakGlass(args) } };
}

function withoutBreakGlass(args: ParsedArgs): ParsedArgs {
  const { [BREAK_GLASS]: _reason, ...rest } = args;
  return rest;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
