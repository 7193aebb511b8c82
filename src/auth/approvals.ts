import type { Logger } from "pino";
import type { Clock, TimerHandle } from "../clock.js";
import { relation, type RoomEvent } from "../chat/events.js";
import { code, normalizeReactionKey, type Message } from "../chat/message.js";
import type { Outbox } from "../chat/outbox.js";
import type { Identity } from "../commands/context.js";
import type { ParsedArgs } from "../commands/declare.js";
import { formatDuration } from "../config/duration.js";
import type { AuditFields, StateStore } from "../state/store.js";
import { DirectoryUnavailableError } from "./directory.js";
import { describeGroups, inGroups, type ApprovalRule } from "./policy.js";

export const REQUEST_CONTENT_KEY = "fr.deuxfleurs.majordome.request";
const APPROVE = "✅";
const REJECT = "❌";
const PREFIX = "approvals/";

export type RequestStatus = "pending" | "approved" | "rejected" | "expired" | "done" | "failed" | "not-run";

export interface ApprovalRequest {
  id: string;
  roomId: string;
  commandEventId: string;
  requester: string;
  command: string;
  /** The command as typed, normalized (shown to people). */
  line: string;
  args: ParsedArgs;
  policyKeys: string[];
  approvers: number;
  from: string[];
  selfApproval: boolean;
  createdAt: number;
  expiresAt: number;
  summary: string;
  digest: string;
  /** The request message (local ID; its event ID once sent). */
  messageId: string;
  /**
   * The thread the request was asked in (a suggested action taken by reaction on an incident): the
   * request and what is said about it go there, since a thread cannot start inside another.
   */
  threadRoot?: string;
  eventId?: string;
  status: RequestStatus;
  /** Counted reactions by reaction event ID. */
  votes: Record<string, { sender: string; vote: "approve" | "reject" }>;
  outcome?: string;
  /**
   * False from the moment a request is decided until its message shows it (and it is audited): a kill
   * in between is made good at start-up. Absent on requests decided before this field existed.
   */
  shown?: boolean;
}

export interface Reaction {
  eventId: string;
  sender: string;
  key: string;
}

export interface ApprovalDeps {
  store: StateStore;
  outbox: Outbox;
  clock: Clock;
  log: Logger;
  botUserId: string;
  identify(sender: string, opts?: { fresh?: boolean }): Promise<Identity>;
  /** Whether the requester may still ask for this (re-read at quorum). */
  stillAllowed(identity: Identity, request: ApprovalRequest): boolean;
  /** The reactions on an event now (after a restart, to count those given while majordome was down). */
  reactionsOn(roomId: string, eventId: string): Promise<Reaction[]>;
  /** Runs an approved request: plans again, checks the digest, runs once through the journal; returns the outcome. */
  execute(request: ApprovalRequest, approvers: string[]): Promise<{ status: RequestStatus; outcome: string }>;
  /**
   * For an approved request found unfinished at start-up: what its action journal recorded ("none": it
   * never began, so it may run; "running": it is still being resumed; else its final status and outcome).
   */
  recorded?(
    request: ApprovalRequest,
    approvers: string[],
  ): Promise<"none" | "running" | { status: RequestStatus; outcome: string }>;
  audit(entry: AuditFields): Promise<void>;
}

export type NewRequest = Pick<
  ApprovalRequest,
  | "id"
  | "roomId"
  | "commandEventId"
  | "requester"
  | "command"
  | "line"
  | "args"
  | "policyKeys"
  | "summary"
  | "digest"
  | "threadRoot"
> & { approval: ApprovalRule };

/**
 * Approval by reaction. A request is persisted and posted; ✅ from eligible people other than the requester
 * count, ❌ from an eligible person rejects, anything else is ignored and said so in the thread. At quorum,
 * everyone's groups are read again from the directory before the action runs, once.
 */
export class Approvals {
  private readonly timers = new Map<string, TimerHandle>();

  constructor(private readonly deps: ApprovalDeps) {}

  async open(input: NewRequest): Promise<ApprovalRequest> {
    const { clock, store } = this.deps;
    const request: ApprovalRequest = {
      id: input.id,
      roomId: input.roomId,
      commandEventId: input.commandEventId,
      requester: input.requester,
      command: input.command,
      line: input.line,
      args: input.args,
      policyKeys: input.policyKeys,
      approvers: input.approval.approvers,
      from: input.approval.from,
      selfApproval: input.approval.self_approval,
      createdAt: clock.now(),
      expiresAt: clock.now() + input.approval.expires,
      summary: input.summary,
      digest: input.digest,
      messageId: `${input.id}#request`,
      ...(input.threadRoot ? { threadRoot: input.threadRoot } : {}),
      status: "pending",
      votes: {},
    };
    // Create-only: a command replayed after a crash finds its request. If it is still pending, its
    // message and offers are sent again under their fixed IDs (a kill may have come between the save
    // and the send; the outbox ignores IDs it knows and the homeserver dedupes by transaction ID).
    if (!(await store.cas(PREFIX + request.id, request, 0))) {
      const existing = (await this.load(request.id))!;
      if (existing.status === "pending") {
        await this.post(existing);
        this.scheduleExpiry(existing);
        void this.rememberEventId(existing);
      }
      return existing;
    }
    await this.post(request);
    await this.deps.audit({
      kind: "approval.requested",
      actor: request.requester,
      roomId: request.roomId,
      command: request.line,
      request: request.id,
      digest: request.digest,
    });
    this.scheduleExpiry(request);
    void this.rememberEventId(request);
    return request;
  }

  private async post(request: ApprovalRequest): Promise<void> {
    const { outbox } = this.deps;
    await outbox.send(request.roomId, this.render(request), {
      id: request.messageId,
      ...(request.threadRoot ? { threadRoot: request.threadRoot } : { replyTo: request.commandEventId }),
    });
    await outbox.react(request.roomId, request.messageId, APPROVE, { id: `${request.id}#offer-approve` });
    await outbox.react(request.roomId, request.messageId, REJECT, { id: `${request.id}#offer-reject` });
  }

  /** Reactions and redactions from the pipeline. True when it concerned a request. */
  async onReaction(event: RoomEvent): Promise<boolean> {
    if (event.type === "m.room.redaction" && event.redacts)
      return this.onWithdrawn(event.roomId, event.redacts);
    const rel = relation(event);
    if (event.type !== "m.reaction" || rel.relType !== "m.annotation" || !rel.eventId || !rel.key)
      return false;
    const request = await this.byEventId(event.roomId, rel.eventId);
    if (!request) return false;
    await this.count(request, { eventId: event.eventId, sender: event.sender, key: rel.key });
    return true;
  }

  /**
   * At start-up (in the room's queue, before replayed events): expire what expired while down, recount
   * reactions and act on any quorum reached; finish approved requests a kill left unfinished, from their
   * action journal record, or run them if they never began (once: the journal refuses a second run).
   */
  async recover(roomId?: string): Promise<void> {
    for (const request of await this.unfinished()) {
      if (roomId !== undefined && request.roomId !== roomId) continue;
      if (request.status === "approved") await this.resumeApproved(request);
      else if (request.status === "pending") await this.recoverPending(request);
      else await this.show(request, request.outcome ?? "", distinctApprovers(request));
    }
  }

  /** Requests not decided yet, approved and not finished, or decided and not shown yet. */
  async unfinished(): Promise<ApprovalRequest[]> {
    return (await this.deps.store.list<ApprovalRequest>(PREFIX))
      .map((e) => e.value)
      .filter((r) => r.status === "pending" || r.status === "approved" || r.shown === false);
  }

  private async recoverPending(request: ApprovalRequest): Promise<void> {
    this.scheduleExpiry(request);
    if (request.expiresAt <= this.deps.clock.now()) return;
    const eventId = request.eventId ?? (await this.deps.outbox.eventIdOf(request.messageId));
    if (!eventId) return;
    let reactions: Reaction[];
    try {
      reactions = await this.deps.reactionsOn(request.roomId, eventId);
    } catch (error) {
      this.deps.log.warn({ err: error, request: request.id }, "could not recount reactions");
      return;
    }
    const present = new Set(reactions.map((r) => r.eventId));
    await this.update(request.id, (r) => {
      if (r.status !== "pending") return false;
      const gone = Object.keys(r.votes).filter((id) => !present.has(id));
      for (const id of gone) delete r.votes[id];
      return gone.length > 0;
    });
    for (const reaction of reactions) {
      const current = await this.load(request.id);
      if (current?.status !== "pending" || current.votes[reaction.eventId]) continue;
      if (reaction.sender === this.deps.botUserId) continue;
      await this.count(current, reaction);
    }
    // Votes counted before the kill were skipped above: the quorum they make is evaluated here.
    const after = await this.load(request.id);
    if (
      after?.status === "pending" &&
      after.expiresAt > this.deps.clock.now() &&
      distinctApprovers(after).length >= after.approvers
    ) {
      await this.evaluate(after);
    }
  }

  private async resumeApproved(request: ApprovalRequest): Promise<void> {
    const approvers = distinctApprovers(request);
    const recorded = this.deps.recorded ? await this.deps.recorded(request, approvers) : "none";
    if (recorded === "running") {
      this.deps.log.warn({ request: request.id }, "approved request's action still running; left as is");
      return;
    }
    this.deps.log.info({ request: request.id }, "finishing an approved request left unfinished");
    const { status, outcome } = recorded === "none" ? await this.deps.execute(request, approvers) : recorded;
    await this.finish(request, status, outcome, approvers);
  }

  stop(): void {
    for (const timer of this.timers.values()) this.deps.clock.clearTimeout(timer);
    this.timers.clear();
  }

  async pending(): Promise<ApprovalRequest[]> {
    return (await this.deps.store.list<ApprovalRequest>(PREFIX))
      .map((e) => e.value)
      .filter((r) => r.status === "pending");
  }

  async load(id: string): Promise<ApprovalRequest | undefined> {
    return (await this.deps.store.get<ApprovalRequest>(PREFIX + id))?.value;
  }

  private async count(request: ApprovalRequest, reaction: Reaction): Promise<void> {
    const key = normalizeReactionKey(reaction.key);
    if (key !== APPROVE && key !== REJECT) return;
    const vote = key === APPROVE ? "approve" : "reject";
    // A reaction replayed after a kill, counted already: once is enough.
    if (request.votes[reaction.eventId]) return;
    if (request.status !== "pending") {
      return this.say(
        request,
        `${reaction.sender}'s ${key} came after the request was ${request.status}; it changes nothing.`,
      );
    }
    if (this.deps.clock.now() >= request.expiresAt) {
      await this.expire(request.id);
      return this.say(request, `${reaction.sender}'s ${key} came too late: the request expired.`);
    }
    const isRequester = reaction.sender === request.requester;
    if (vote === "approve" && isRequester && !request.selfApproval) {
      return this.say(request, `${reaction.sender}'s ✅ does not count: nobody approves their own request.`);
    }
    if (!(vote === "reject" && isRequester)) {
      const problem = await this.ineligible(request, reaction.sender, false);
      if (problem) return this.say(request, `${reaction.sender}'s ${key} does not count: ${problem}.`);
    }
    let state = "counted" as "counted" | "known" | "decided";
    const updated = await this.update(request.id, (r) => {
      if (r.status !== "pending") state = "decided";
      else if (r.votes[reaction.eventId]) state = "known";
      else {
        r.votes[reaction.eventId] = { sender: reaction.sender, vote };
        return true;
      }
      return false;
    });
    // Counted meanwhile by someone else (a recount at start-up and the replayed reaction): once is enough.
    if (state === "known") return;
    if (state === "decided" || !updated) {
      const now = (await this.load(request.id)) ?? request;
      return this.say(
        now,
        `${reaction.sender}'s ${key} came after the request was ${now.status}; it changes nothing.`,
      );
    }
    await this.deps.audit({
      kind: "approval.vote",
      actor: reaction.sender,
      request: updated.id,
      result: vote,
      roomId: updated.roomId,
    });
    if (vote === "reject") return this.finish(updated, "rejected", `Rejected by ${reaction.sender}.`);
    await this.evaluate(updated);
  }

  /** Why `sender` may not vote (null: may). Unreachable directory: the vote is kept and re-checked at quorum. */
  private async ineligible(request: ApprovalRequest, sender: string, fresh: boolean): Promise<string | null> {
    let identity: Identity;
    try {
      identity = await this.deps.identify(sender, { fresh });
    } catch (error) {
      if (error instanceof DirectoryUnavailableError && !fresh) return null;
      throw error;
    }
    if (!identity.user) return identity.reason ?? "not in the directory";
    if (!inGroups(identity.user.groups, request.from))
      return `approvals are for ${describeGroups(request.from)}`;
    return null;
  }

  private async evaluate(request: ApprovalRequest): Promise<void> {
    const approvers = distinctApprovers(request);
    if (approvers.length < request.approvers) {
      return this.edit(request, `${approvers.length} of ${request.approvers} approvals so far.`);
    }
    // Quorum: everyone's groups are read again, fresh, before anything runs.
    try {
      const requester = await this.deps.identify(request.requester, { fresh: true });
      if (!this.deps.stillAllowed(requester, request)) {
        return this.finish(request, "not-run", `Not run: ${request.requester} may no longer run this.`);
      }
      for (const approver of approvers) {
        const problem = await this.ineligible(request, approver, true);
        if (problem) {
          const updated = await this.update(request.id, (r) => {
            if (r.status !== "pending") return false;
            for (const [id, v] of Object.entries(r.votes)) if (v.sender === approver) delete r.votes[id];
            return true;
          });
          if (!updated) return;
          await this.say(updated, `${approver}'s ✅ no longer counts: ${problem}.`);
          return this.evaluate(updated);
        }
      }
    } catch (error) {
      if (!(error instanceof DirectoryUnavailableError)) throw error;
      await this.say(
        request,
        `⛔ ${error.message}; nothing was done. The request stays open: react again to retry.`,
      );
      return;
    }
    if (!(await this.transition(request.id, "pending", "approved"))) return;
    await this.edit({ ...request, status: "approved" }, `Approved by ${approvers.join(", ")}; running…`);
    const { status, outcome } = await this.deps.execute(request, approvers);
    await this.finish({ ...request, status: "approved" }, status, outcome, approvers);
  }

  private async onWithdrawn(roomId: string, redacted: string): Promise<boolean> {
    for (const request of await this.pending()) {
      if (request.roomId !== roomId || !request.votes[redacted]) continue;
      const { sender } = request.votes[redacted];
      const updated = await this.update(request.id, (r) => {
        if (r.status !== "pending" || !r.votes[redacted]) return false;
        delete r.votes[redacted];
        return true;
      });
      if (!updated) return true;
      await this.deps.audit({ kind: "approval.withdrawn", actor: sender, request: request.id, roomId });
      await this.edit(
        updated,
        `${distinctApprovers(updated).length} of ${updated.approvers} approvals so far.`,
      );
      return true;
    }
    return false;
  }

  private async expire(id: string): Promise<void> {
    const request = await this.load(id);
    if (!request || request.status !== "pending") return;
    const approvals = distinctApprovers(request).length;
    await this.finish(
      request,
      "expired",
      `Expired with ${approvals} of ${request.approvers} approvals; nothing was done.`,
    );
  }

  private async finish(
    request: ApprovalRequest,
    status: RequestStatus,
    outcome: string,
    approvers: string[] = [],
  ): Promise<void> {
    // Only one caller moves a request out of its status (a recovery and a replay may both try).
    if (!(await this.transition(request.id, request.status, status, outcome))) return;
    this.deps.clock.clearTimeout(this.timers.get(request.id));
    this.timers.delete(request.id);
    await this.show({ ...request, status }, outcome, approvers);
  }

  /**
   * Edits a decided request's message to its outcome, marks it shown, then audits it. Marked shown as
   * soon as the edit is queued (durably), so that a kill after that does not edit it a second time.
   */
  private async show(request: ApprovalRequest, outcome: string, approvers: string[]): Promise<void> {
    const { status } = request;
    await this.edit(request, outcome, true);
    await this.update(request.id, (r) => {
      if (r.shown !== false) return false;
      r.shown = true;
      return true;
    });
    await this.deps.audit({
      kind: `approval.${status}`,
      actor: request.requester,
      roomId: request.roomId,
      command: request.line,
      request: request.id,
      digest: request.digest,
      approvers,
      result: outcome,
    });
  }

  /** Check-and-set on the stored request: only one caller moves it out of a status. */
  private async transition(
    id: string,
    from: RequestStatus,
    to: RequestStatus,
    outcome?: string,
  ): Promise<boolean> {
    for (;;) {
      const current = await this.deps.store.get<ApprovalRequest>(PREFIX + id);
      if (!current || current.value.status !== from) return false;
      const decided = to !== "pending" && to !== "approved";
      const next = {
        ...current.value,
        status: to,
        ...(outcome ? { outcome } : {}),
        ...(decided ? { shown: false } : {}),
      };
      if (await this.deps.store.cas(PREFIX + id, next, current.version)) return true;
    }
  }

  /**
   * Check-and-set on the stored request: `change` is applied to a fresh copy and written only if nobody
   * wrote in between (else re-read and applied again). `change` returns false to write nothing.
   * Returns the request as written, or undefined when nothing was written.
   */
  private async update(
    id: string,
    change: (request: ApprovalRequest) => boolean,
  ): Promise<ApprovalRequest | undefined> {
    for (;;) {
      const current = await this.deps.store.get<ApprovalRequest>(PREFIX + id);
      if (!current) return undefined;
      const next = structuredClone(current.value);
      if (!change(next)) return undefined;
      if (await this.deps.store.cas(PREFIX + id, next, current.version)) return next;
    }
  }

  private async byEventId(roomId: string, eventId: string): Promise<ApprovalRequest | undefined> {
    for (const { value } of await this.deps.store.list<ApprovalRequest>(PREFIX)) {
      if (value.roomId !== roomId) continue;
      const known = value.eventId ?? (await this.deps.outbox.eventIdOf(value.messageId));
      if (known === eventId) return value;
    }
    return undefined;
  }

  private async rememberEventId(request: ApprovalRequest): Promise<void> {
    const eventId = await this.deps.outbox.eventIdOf(request.messageId);
    if (!eventId) return;
    await this.update(request.id, (r) => {
      if (r.eventId) return false;
      r.eventId = eventId;
      return true;
    });
  }

  private scheduleExpiry(request: ApprovalRequest): void {
    this.deps.clock.clearTimeout(this.timers.get(request.id));
    const wait = Math.max(0, request.expiresAt - this.deps.clock.now());
    this.timers.set(
      request.id,
      this.deps.clock.setTimeout(() => {
        this.timers.delete(request.id);
        this.expire(request.id).catch((error: unknown) =>
          this.deps.log.error({ err: error }, "expiry failed"),
        );
      }, wait),
    );
  }

  private async say(request: ApprovalRequest, text: string): Promise<void> {
    await this.deps.outbox.send(request.roomId, { markdown: text }, { threadRoot: threadOf(request) });
  }

  /** `once`: the edit that shows a decided request's outcome, under a fixed ID (never shown twice). */
  private edit(request: ApprovalRequest, status: string, once = false): Promise<void> {
    return this.deps.outbox.edit(
      request.roomId,
      request.messageId,
      this.render(request, status),
      once ? { id: `${request.id}#shown-${request.status}` } : {},
    );
  }

  private render(request: ApprovalRequest, status?: string): Message {
    const head: Record<RequestStatus, string> = {
      pending: "🔐 **Approval needed**",
      approved: "⏳ **Approved**",
      done: "✅ **Done**",
      failed: "❌ **Failed**",
      rejected: "🚫 **Rejected**",
      expired: "⌛ **Expired**",
      "not-run": "⚠️ **Not run**",
    };
    const who = request.selfApproval ? "" : " (not the requester)";
    const expiry = new Date(request.expiresAt).toISOString().replace("T", " ").slice(0, 16);
    const lines = [
      `${head[request.status]} — ${request.requester} asked: ${code(request.line)}`,
      "",
      request.summary,
      "",
      `Needs ${request.approvers} ✅ from ${describeGroups(request.from)}${who}; ❌ from one of them rejects. ` +
        `Expires ${expiry} UTC (${formatDuration(request.expiresAt - request.createdAt)} after the request). ` +
        `Request ${code(request.id)}.`,
    ];
    if (status) lines.push("", `**Status:** ${status}`);
    return { markdown: lines.join("\n"), extra: { [REQUEST_CONTENT_KEY]: { id: request.id } } };
  }
}

function distinctApprovers(request: ApprovalRequest): string[] {
  const senders = Object.values(request.votes)
    .filter((v) => v.vote === "approve" && (request.selfApproval || v.sender !== request.requester))
    .map((v) => v.sender);
  return [...new Set(senders)].sort();
}

/** Where what is said about a request goes: the request's own thread, or the thread it was asked in. */
export function threadOf(request: ApprovalRequest): string {
  return request.threadRoot ?? request.messageId;
}
