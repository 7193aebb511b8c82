import type { Logger } from "pino";
import type { Clock } from "./clock.js";
import { commandText, type RoomEvent } from "./chat/events.js";
import type { Inbox } from "./chat/inbox.js";
import { code, message, type Message } from "./chat/message.js";
import type { Outbox } from "./chat/outbox.js";
import type { Authorizer } from "./commands/authorize.js";
import type { CommandContext, Identity, Services } from "./commands/context.js";
import type { Router } from "./commands/router.js";
import { DirectoryUnavailableError } from "./auth/directory.js";
import { formatDuration } from "./config/duration.js";

const TIMED_OUT: unique symbol = Symbol("timed out");

export type Outcome = "ok" | "error" | "denied" | "invalid" | "timeout" | "unavailable";

export interface PipelineHooks {
  commandFinished?(name: string, outcome: Outcome, ms: number): void;
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
  hooks?: PipelineHooks;
}

/**
 * One path for every inbound event: accepted durably, then per room, in order: parsed, identified,
 * authorized, handled, answered. A handler's failure is reported in the room and never escapes.
 */
export class Pipeline {
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

  /** Re-queues what a previous run accepted but did not finish handling. */
  resume(events: RoomEvent[]): void {
    for (const event of events) this.schedule(event);
  }

  /** Stops taking new events; resolves when what was accepted has been handled. */
  async stop(): Promise<void> {
    this.accepting = false;
    await this.idle();
  }

  /** Resolves when every accepted event is handled and every background task has ended. */
  async idle(): Promise<void> {
    while (this.rooms.size > 0 || this.backgroundTasks.size > 0) {
      await Promise.allSettled([...this.rooms.values(), ...this.backgroundTasks]);
    }
  }

  /** Resolves when every accepted event is handled (background tasks may go on). */
  async settled(): Promise<void> {
    while (this.rooms.size > 0) await Promise.allSettled([...this.rooms.values()]);
  }

  private schedule(event: RoomEvent): void {
    const previous = this.rooms.get(event.roomId) ?? Promise.resolve();
    const next = previous
      .then(() => this.handle(event))
      .catch((error: unknown) =>
        this.opts.log.error({ err: error, event: event.eventId }, "event handling failed"),
      )
      .then(() => this.opts.inbox.done(event.eventId))
      .catch((error: unknown) => this.opts.log.error({ err: error }, "could not mark event as processed"));
    this.rooms.set(event.roomId, next);
    void next.then(() => {
      if (this.rooms.get(event.roomId) === next) this.rooms.delete(event.roomId);
    });
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
    const mentions = event.content["m.mentions"] as { user_ids?: unknown } | undefined;
    const mentioned = Array.isArray(mentions?.user_ids) && mentions.user_ids.includes(this.opts.botUserId);
    const match = this.mentionPattern.exec(body);
    if (match) return body.slice(match[0].length);
    return mentioned ? body.replace(/^[^:]*:\s*/, "") : undefined;
  }

  private async runCommand(event: RoomEvent, line: string): Promise<void> {
    const { outbox, router, clock, services, authorizer } = this.opts;
    const receivedAt = clock.now();
    const started = performance.now();
    let replies = 0;
    const reply = (msg: Message) =>
      outbox.send(event.roomId, msg, { id: `${event.eventId}#${replies++}`, replyTo: event.eventId });
    const finish = (name: string, outcome: Outcome) =>
      this.opts.hooks?.commandFinished?.(name, outcome, performance.now() - started);

    await outbox.react(event.roomId, event.eventId, "👀", `${event.eventId}#seen`);
    const resolution = router.resolve(line);
    if (resolution.kind === "error") {
      await reply(message(resolution.message));
      return finish(resolution.spec?.name ?? "unknown", "invalid");
    }
    const { spec, args, policyKeys } = resolution;

    let identity: Identity;
    try {
      identity = await services.identify(event.sender);
      const decision = await authorizer.decide(identity, policyKeys, event.roomId);
      if (decision.outcome === "deny") {
        await reply(message(`⛔ ${decision.reason}`));
        return finish(spec.name, "denied");
      }
    } catch (error) {
      if (!(error instanceof DirectoryUnavailableError)) throw error;
      await reply(message(`⛔ ${error.message}; nothing was done.`));
      return finish(spec.name, "unavailable");
    }

    const ctx: CommandContext = {
      command: spec,
      identity,
      roomId: event.roomId,
      eventId: event.eventId,
      sentAt: event.originServerTs,
      receivedAt,
      prefix: this.opts.prefix,
      services,
      reply,
      edit: (id, msg) => outbox.edit(event.roomId, id, msg),
      thread: (root, msg) =>
        outbox.send(event.roomId, msg, { id: `${event.eventId}#${replies++}`, threadRoot: root }),
      background: (label, task) => this.background(event, label, task),
    };

    const timeout = new AbortController();
    try {
      const result: Message | void | typeof TIMED_OUT = await Promise.race<Message | void | typeof TIMED_OUT>(
        [
          spec.run(ctx, args),
          // Aborted once the race is over; that rejection is expected and ignored.
          clock.sleep(this.opts.commandTimeoutMs, timeout.signal).then(
            (): typeof TIMED_OUT => TIMED_OUT,
            () => undefined,
          ),
        ],
      );
      if (result === TIMED_OUT) {
        await reply(
          message(
            `⏱️ ${code(spec.name)} did not finish within ${formatDuration(this.opts.commandTimeoutMs)}; it was abandoned.`,
          ),
        );
        return finish(spec.name, "timeout");
      }
      if (result) await reply(result);
      else if (replies === 0) await reply(message("✅ Done."));
      finish(spec.name, "ok");
    } catch (error) {
      const ref = event.eventId.slice(1, 9);
      this.opts.log.error({ err: error, command: spec.name, ref }, "command failed");
      await reply(message(`❌ ${code(spec.name)} failed: ${errorText(error)} (ref ${code(ref)})`));
      finish(spec.name, "error");
    } finally {
      timeout.abort();
    }
  }

  private background(event: RoomEvent, label: string, task: () => Promise<void>): void {
    const run = (async () => {
      try {
        await task();
      } catch (error) {
        this.opts.log.error({ err: error, task: label }, "background task failed");
        await this.opts.outbox.send(event.roomId, message(`❌ ${label} failed: ${errorText(error)}`), {
          replyTo: event.eventId,
        });
      }
    })();
    this.backgroundTasks.add(run);
    void run.finally(() => this.backgroundTasks.delete(run));
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
