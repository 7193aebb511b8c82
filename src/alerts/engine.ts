import { hash } from "node:crypto";
import type { Logger } from "pino";
import type { Clock, TimerHandle } from "../clock.js";
import { relation, type RoomEvent } from "../chat/events.js";
import { code, message, normalizeReactionKey } from "../chat/message.js";
import type { Outbox } from "../chat/outbox.js";
import { formatDuration } from "../config/duration.js";
import type { StateStore } from "../state/store.js";
import { MAX_MEMBERS, RECENT_IDS_KEPT, stateFromMembers, type Incident, type Member } from "./incident.js";
import { deleteIncident, incidentEntries, loadIncidents } from "./incident-store.js";
import { ACK, SILENCE, clockTime, incidentLine, renderIncident } from "./render.js";
import {
  groupKey,
  inhibitedByNodeDown,
  isAllocationKind,
  memberKey,
  suggestedAction,
  titleOf,
  worst,
  type RuleSet,
} from "./rules.js";
import { silences as silenceMatches, type Silence } from "./silences.js";
import type { Signal, SignalKind } from "./signal.js";

export interface AlertTimings {
  /** How long a new (non-critical) incident collects signals before its first message. */
  groupWaitMs: number;
  /** A resolved incident that fires again within this window reopens its message instead of a new one. */
  groupIntervalMs: number;
  /** Unacknowledged critical incidents are repeated, mentioning the on-call group, this often. */
  repeatIntervalMs: number;
  /** Shortest time between two edits of an incident's message that only update counts and reasons. */
  editIntervalMs: number;
  /** How long a 🔕 reaction silences an incident. */
  reactionSilenceMs: number;
  /** How long resolved incidents are kept for `!incidents --all` and the digest. */
  historyMs: number;
}

export interface AlertEngineDeps {
  store: StateStore;
  outbox: Outbox;
  clock: Clock;
  log: Logger;
  roomId: string;
  rules: RuleSet;
  timings: AlertTimings;
  /** Whether `sender` may do what `policyKey` names in the alert room (reason in words when not). */
  mayAct(sender: string, policyKey: string): Promise<{ allowed: true } | { allowed: false; reason: string }>;
  /** The on-call group's members, as Matrix user IDs (empty when none is configured). */
  onCall(): Promise<string[]>;
  /** Runs a suggested action as if `sender` had typed it, through the same authorization and approval. */
  runCommand(
    roomId: string,
    sender: string,
    line: string,
    causeEventId: string,
    threadRoot: string,
  ): Promise<void>;
}

const SILENCES = "alerts/silences/";
const HOLDS = "alerts/holds/";
const SEQUENCE = "alerts/sequence";
const SEEN_KEPT = 10_000;
const FOLLOW_GRACE_MS = 120_000;
const CHECKPOINT_MS = 10_000;

/** A change that must hold for its rule's hold time before it counts (flap damping). */
interface Hold {
  signal: Signal;
  until: number;
}

/**
 * Turns signals into incidents and keeps their room messages true: one message per incident, edited
 * in place, resolved in place, reopened rather than repeated. Stages, in the order a signal meets them:
 * rule → dedup → deployment routing → inhibition by node → flap damping → grouping → silence → notify.
 */
export class AlertEngine {
  private readonly incidents = new Map<string, Incident>();
  /** The current incident of each group key (firing, or resolved within the reopen window). */
  private readonly current = new Map<string, Incident>();
  private readonly silenceList = new Map<string, Silence>();
  private readonly holds = new Map<string, Hold>();
  private readonly holdTimers = new Map<string, TimerHandle>();
  private readonly postTimers = new Map<string, TimerHandle>();
  private readonly silenceTimers = new Map<string, TimerHandle>();
  private readonly seen = new Set<string>();
  /** Deployments majordome follows, and the job they belong to once a routed signal named it. */
  private readonly followed = new Map<string, { roomId: string; messageId: string; job?: string }>();
  private readonly rendered = new Map<string, string>();
  private readonly shownState = new Map<string, string>();
  private readonly lastEdit = new Map<string, number>();
  private readonly editTimers = new Map<string, TimerHandle>();
  /** Incidents to store at the next flush, and those whose counts changed (stored at a checkpoint). */
  private readonly dirty = new Set<string>();
  private readonly touched = new Set<string>();
  private readonly storedAt = new Map<string, number>();
  /** Per incident, the members changed since it was last stored (only they are written). */
  private readonly changedMembers = new Map<string, Set<string>>();
  private flushing: Promise<void> | undefined;
  private sequence = 0;
  private sequenceDirty = false;
  private stopped = false;

  constructor(private readonly deps: AlertEngineDeps) {}

  /** Restores incidents, silences and pending holds, and re-arms their timers. */
  async load(): Promise<void> {
    const { store, clock } = this.deps;
    this.sequence = (await store.get<number>(SEQUENCE))?.value ?? 0;
    for (const { value } of await store.list<Silence>(SILENCES)) {
      if (value.endsAt > clock.now()) this.addSilence(value);
      else await store.delete(SILENCES + value.id);
    }
    for (const value of await loadIncidents(store)) {
      if (value.state === "resolved" && clock.now() - (value.resolvedAt ?? 0) > this.deps.timings.historyMs) {
        await deleteIncident(store, value);
        continue;
      }
      this.incidents.set(value.id, value);
      if (
        value.state === "firing" ||
        clock.now() - (value.resolvedAt ?? 0) <= this.deps.timings.groupIntervalMs
      )
        this.current.set(value.key, value);
      if (value.messageId) {
        this.rendered.set(value.id, this.body(value));
        this.shownState.set(value.id, stateOf(value));
      }
    }
    for (const { key, value } of await store.list<Hold>(HOLDS)) this.armHold(key.slice(HOLDS.length), value);
    for (const incident of this.incidents.values()) {
      // A message whose sending was interrupted is sent again under the same ID (the outbox ignores a known one).
      if (incident.messageId && incident.state === "firing") await this.sendMessage(incident);
      else this.notify(incident);
    }
  }

  /** Stores everything, counts included, and stops. */
  async close(): Promise<void> {
    await this.flush();
    await this.writeDirty(true);
    this.stop();
  }

  stop(): void {
    this.stopped = true;
    for (const timers of [this.holdTimers, this.postTimers, this.silenceTimers, this.editTimers])
      for (const handle of timers.values()) this.deps.clock.clearTimeout(handle);
  }

  /** Takes a signal into account; resolves once what it changed is stored. */
  async ingest(signal: Signal): Promise<void> {
    await this.offer(signal);
    await this.flush();
  }

  /**
   * Takes a signal into account without waiting for it to be stored: for a high-volume source that
   * calls `flush` before it records its own position.
   */
  async offer(signal: Signal): Promise<void> {
    const rule = this.deps.rules[signal.kind];
    if (!rule.enabled || this.stopped) return;
    if (signal.id) {
      if (this.seen.has(signal.id)) return;
      this.remember(signal.id);
    }
    if (this.followed.size > 0 && (await this.routeToDeployment(signal))) return;
    const memberId = memberKey(signal);
    const holdKey = `${groupKey(signal)}|${memberId}`;
    if (rule.holdMs > 0) {
      const effective = this.current.get(groupKey(signal))?.members[memberId]?.effective ?? "resolved";
      const pending = this.holds.get(holdKey);
      if (signal.status === effective) {
        if (pending) await this.dropHold(holdKey);
        return;
      }
      if (pending?.signal.status === signal.status) return;
      const hold = { signal, until: this.deps.clock.now() + rule.holdMs };
      await this.deps.store.set(HOLDS + holdKey, hold);
      this.armHold(holdKey, hold);
      return;
    }
    this.apply(signal);
    // Told at the next turn of the event loop, not at the source's next checkpoint: everything a
    // burst changed in the meantime goes in one batch.
    if (this.dirty.size > 0 || this.touched.size > 0)
      void this.flush().catch((error: unknown) =>
        this.deps.log.error({ err: error }, "could not store incidents"),
      );
  }

  /**
   * A source re-read its backend and says what is still wrong among the kinds it answers for: the
   * members of those kinds it does not name recovered while nobody watched (a restart, a gap).
   */
  async reconcile(
    kinds: ReadonlySet<SignalKind>,
    stillWrong: ReadonlyArray<Pick<Signal, "kind" | "subject">>,
    reason: string,
  ): Promise<void> {
    const wrong = new Set(stillWrong.map((s) => memberKey(s)));
    for (const incident of [...this.incidents.values()]) {
      if (incident.state !== "firing") continue;
      for (const [key, member] of Object.entries(incident.members)) {
        if (member.effective !== "firing" || !kinds.has(member.kind) || wrong.has(key)) continue;
        this.apply({
          kind: member.kind,
          status: "resolved",
          subject: member.subject,
          reason,
          at: this.deps.clock.now(),
        });
      }
    }
    await this.flush();
  }

  /** Allocation failures of a deployment majordome is following go to its progress thread. */
  followDeployment(deploymentId: string, roomId: string, messageId: string): () => void {
    this.followed.set(deploymentId, { roomId, messageId });
    // Events trail the deployment's own status: keep routing them for a while after following ends.
    return () => {
      this.deps.clock.setTimeout(() => this.followed.delete(deploymentId), FOLLOW_GRACE_MS);
    };
  }

  async onReaction(event: RoomEvent): Promise<boolean> {
    const rel = relation(event);
    if (event.type !== "m.reaction" || rel.relType !== "m.annotation" || !rel.eventId || !rel.key)
      return false;
    const incident = await this.incidentOfEvent(event.roomId, rel.eventId);
    if (!incident) return false;
    const key = normalizeReactionKey(rel.key);
    if (key === ACK) await this.acknowledgeByReaction(incident, event.sender);
    else if (key === SILENCE) await this.silenceByReaction(incident, event.sender);
    else if (incident.action && key === normalizeReactionKey(incident.action.emoji))
      await this.deps.runCommand(
        incident.roomId,
        event.sender,
        incident.action.line,
        event.eventId,
        incident.messageId!,
      );
    return true;
  }

  async silence(
    matchers: Record<string, string>,
    durationMs: number,
    author: string,
    reason: string,
  ): Promise<Silence> {
    const now = this.deps.clock.now();
    const silence: Silence = {
      id: `s${await this.nextSequence()}`,
      matchers,
      author,
      reason,
      createdAt: now,
      endsAt: now + durationMs,
    };
    await this.deps.store.set(SILENCES + silence.id, silence);
    this.addSilence(silence);
    for (const incident of this.incidents.values())
      if (incident.state === "firing") this.markChanged(incident);
    await this.flush();
    return silence;
  }

  async unsilence(id: string): Promise<Silence | undefined> {
    const silence = this.silenceList.get(id);
    if (!silence) return undefined;
    await this.expireSilence(silence);
    return silence;
  }

  activeSilences(): Silence[] {
    const now = this.deps.clock.now();
    return [...this.silenceList.values()].filter((s) => s.endsAt > now).sort((a, b) => a.endsAt - b.endsAt);
  }

  openIncidents(): Incident[] {
    return [...this.incidents.values()]
      .filter((i) => i.state === "firing")
      .sort((a, b) => severityOrder(b) - severityOrder(a) || a.firingSince - b.firingSince);
  }

  recentlyResolved(): Incident[] {
    return [...this.incidents.values()]
      .filter((i) => i.state === "resolved")
      .sort((a, b) => (b.resolvedAt ?? 0) - (a.resolvedAt ?? 0))
      .slice(0, 20);
  }

  incident(id: string): Incident | undefined {
    return this.incidents.get(id);
  }

  /** Repeats unacknowledged critical incidents, mentioning the on-call group (run on a schedule). */
  async remind(): Promise<void> {
    const now = this.deps.clock.now();
    const due = this.openIncidents().filter(
      (i) =>
        i.severity === "critical" &&
        i.messageId &&
        !i.ack &&
        !i.silencedBy &&
        now - (i.remindedAt ?? i.postedAt ?? now) >= this.deps.timings.repeatIntervalMs,
    );
    if (due.length === 0) return;
    const mentions = await this.deps.onCall().catch((error: unknown) => {
      this.deps.log.warn({ err: error }, "could not read the on-call group");
      return [];
    });
    for (const incident of due) {
      incident.remindedAt = now;
      this.markChanged(incident);
      await this.flush();
      const who = mentions.length ? ` ${mentions.join(" ")}` : "";
      await this.deps.outbox.send(
        incident.roomId,
        message(
          `🔁 Still firing after ${formatDuration(now - incident.firingSince)} and not acknowledged: ${incident.title}.${who}`,
          mentions,
        ),
        { threadRoot: incident.messageId!, id: `${incident.messageId}:remind:${now}` },
      );
    }
  }

  /** The last 24 hours in one message (run on a schedule). */
  async digest(): Promise<void> {
    const now = this.deps.clock.now();
    const since = now - 24 * 3600_000;
    const recent = [...this.incidents.values()].filter(
      (i) => i.state === "firing" || (i.resolvedAt ?? 0) >= since || i.openedAt >= since,
    );
    const open = recent.filter((i) => i.state === "firing");
    const resolved = recent.filter((i) => i.state === "resolved");
    const lines = [
      `**Daily digest** — ${recent.filter((i) => i.openedAt >= since).length} incidents opened in the last 24 h, ${resolved.length} resolved, ${open.length} open.`,
    ];
    if (open.length) lines.push("Open:", ...open.map((i) => `- ${incidentLine(i, now)}`));
    if (resolved.length)
      lines.push("Resolved:", ...resolved.slice(-20).map((i) => `- ${incidentLine(i, now)}`));
    const silenced = this.activeSilences();
    if (silenced.length) lines.push(`${silenced.length} silences active (\`!silences\`).`);
    await this.deps.outbox.send(this.deps.roomId, message(lines.join("\n")), { id: `digest:${now}` });
    await this.prune(now);
  }

  /** Resolves once every change so far is stored and its message queued. */
  flush(): Promise<void> {
    this.flushing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.flushing = undefined;
        this.writeDirty().then(resolve, reject);
      });
    });
    return this.flushing;
  }

  // --- stages ---------------------------------------------------------------------------------

  private async routeToDeployment(signal: Signal): Promise<boolean> {
    const deployment = signal.subject.deployment;
    // A job whose followed deployment failed its only allocations is dead: that is the deploy's news too.
    const followed = deployment
      ? this.followed.get(deployment)
      : signal.kind === "job-dead"
        ? [...this.followed.values()].find((f) => f.job !== undefined && f.job === signal.subject.job)
        : undefined;
    if (!followed) return false;
    if (signal.kind === "deployment-failed") return true; // the progress message reports it
    const routed = isAllocationKind(signal.kind) || signal.kind === "job-dead";
    if (!routed || signal.status !== "firing") return false;
    followed.job ??= signal.subject.job;
    const text = signal.subject.alloc
      ? `${titleOf(signal)}: allocation ${code(signal.subject.alloc)}: ${signal.reason}`
      : signal.reason;
    await this.deps.outbox.send(followed.roomId, message(`⚠️ ${text}`), {
      threadRoot: followed.messageId,
      id: `${followed.messageId}:${memberKey(signal)}`,
    });
    return true;
  }

  /** Applies a signal (after its hold) to the incident it belongs to. */
  private apply(signal: Signal): void {
    const nodeIncident =
      inhibitedByNodeDown(signal.kind) && signal.subject.node
        ? this.current.get(`node:${signal.subject.node}:node-down`)
        : undefined;
    if (nodeIncident?.state === "firing") {
      this.updateMember(nodeIncident, signal, false);
      return;
    }
    const key = groupKey(signal);
    let incident = this.current.get(key);
    if (signal.status === "resolved") {
      if (!incident || !incident.members[memberKey(signal)]) return;
      this.updateMember(incident, signal, true);
      return;
    }
    if (incident?.state === "resolved") {
      if (this.deps.clock.now() - (incident.resolvedAt ?? 0) > this.deps.timings.groupIntervalMs) {
        this.current.delete(key);
        incident = undefined;
      }
    }
    incident ??= this.open(signal, key);
    this.updateMember(incident, signal, true);
  }

  private open(signal: Signal, key: string): Incident {
    const now = this.deps.clock.now();
    const action = suggestedAction(signal.kind, signal.subject);
    const incident: Incident = {
      id: `i${++this.sequence}`,
      key,
      roomId: this.deps.roomId,
      title: titleOf(signal),
      severity: this.deps.rules[signal.kind].severity,
      state: "firing",
      openedAt: now,
      firingSince: now,
      members: {},
      overflow: 0,
      events: 0,
      latestReason: signal.reason,
      reopened: 0,
      recentIds: [],
      ...(action ? { action } : {}),
    };
    this.incidents.set(incident.id, incident);
    this.current.set(key, incident);
    this.sequenceDirty = true;
    return incident;
  }

  private updateMember(incident: Incident, signal: Signal, primary: boolean): void {
    const id = memberKey(signal);
    let member: Member | undefined = incident.members[id];
    if (signal.id) {
      const digest = signalDigest(signal.id);
      if (incident.recentIds.includes(digest)) return;
      incident.recentIds.push(digest);
      if (incident.recentIds.length > RECENT_IDS_KEPT) incident.recentIds.shift();
    }
    // Only a change of what is affected, or of its state, must be stored at once; counts and reasons
    // of a storm are stored at the next checkpoint (a crash loses some counts, never an incident).
    let structural = !member || member.observed !== signal.status;
    if (!member) {
      if (signal.status === "resolved") return;
      if (Object.keys(incident.members).length >= MAX_MEMBERS) {
        incident.overflow++;
        incident.events++;
        this.markChanged(incident, false);
        return;
      }
      member = {
        kind: signal.kind,
        subject: signal.subject,
        observed: signal.status,
        observedAt: signal.at,
        effective: signal.status,
        reason: signal.reason,
        events: 0,
        primary,
      };
      incident.members[id] = member;
    }
    if (signal.status === "firing") {
      member.events++;
      incident.events++;
      incident.latestReason = signal.reason;
      if (primary) {
        const severity = worst(incident.severity, this.deps.rules[signal.kind].severity);
        structural ||= severity !== incident.severity;
        incident.severity = severity;
      }
    }
    member.observed = member.effective = signal.status;
    member.observedAt = signal.at;
    member.reason = signal.reason;
    let changed = this.changedMembers.get(incident.id);
    if (!changed) this.changedMembers.set(incident.id, (changed = new Set()));
    changed.add(id);
    this.recompute(incident, structural);
  }

  private recompute(incident: Incident, structural = true): void {
    const now = this.deps.clock.now();
    const state = stateFromMembers(incident);
    if (state !== incident.state) {
      if (state === "resolved") {
        incident.resolvedAt = now;
        delete incident.ack;
        const last = Object.values(incident.members).findLast((m) => m.primary);
        if (last) incident.latestReason = `Recovered: ${last.reason}`;
      } else {
        incident.firingSince = now;
        incident.reopened++;
        delete incident.resolvedAt;
        delete incident.remindedAt;
      }
      incident.state = state;
      structural = true;
    }
    this.markChanged(incident, structural);
  }

  private markChanged(incident: Incident, structural = true): void {
    const silence = incident.state === "firing" ? this.silenceOf(incident) : undefined;
    const silencing = silence?.id !== incident.silencedBy;
    if (silence) incident.silencedBy = silence.id;
    else delete incident.silencedBy;
    (structural || silencing ? this.dirty : this.touched).add(incident.id);
  }

  private silenceOf(incident: Incident): Silence | undefined {
    if (this.silenceList.size === 0) return undefined;
    const now = this.deps.clock.now();
    const target = {
      incident: incident.id,
      severity: incident.severity,
      members: Object.values(incident.members),
    };
    for (const silence of this.silenceList.values()) if (silenceMatches(silence, target, now)) return silence;
    return undefined;
  }

  /** Posts, edits or schedules the incident's message according to its state. */
  private notify(incident: Incident): void {
    if (this.stopped) return;
    if (incident.messageId) {
      // A change of state (resolved, reopened, acknowledged, silenced) is shown at once; new counts and
      // reasons at most once per edit interval, so a storm edits a message a few times, not hundreds.
      const now = this.deps.clock.now();
      const wait = (this.lastEdit.get(incident.id) ?? -Infinity) + this.deps.timings.editIntervalMs - now;
      if (this.shownState.get(incident.id) === stateOf(incident) && wait > 0) {
        if (!this.editTimers.has(incident.id))
          this.editTimers.set(
            incident.id,
            this.deps.clock.setTimeout(() => {
              this.editTimers.delete(incident.id);
              this.notify(incident);
            }, wait),
          );
        return;
      }
      const rendered = this.render(incident);
      if (this.rendered.get(incident.id) === rendered.markdown) return;
      this.deps.clock.clearTimeout(this.editTimers.get(incident.id));
      this.editTimers.delete(incident.id);
      this.lastEdit.set(incident.id, now);
      this.shownState.set(incident.id, stateOf(incident));
      this.rendered.set(incident.id, rendered.markdown);
      void this.deps.outbox
        .edit(incident.roomId, incident.messageId, rendered)
        .catch((error: unknown) =>
          this.deps.log.error({ err: error, incident: incident.id }, "could not edit"),
        );
      return;
    }
    if (incident.state !== "firing" || incident.silencedBy) return;
    const due =
      incident.severity === "critical"
        ? 0
        : incident.firingSince + this.deps.timings.groupWaitMs - this.deps.clock.now();
    if (due <= 0) {
      this.deps.clock.clearTimeout(this.postTimers.get(incident.id));
      this.postTimers.delete(incident.id);
      void this.post(incident).catch((error: unknown) =>
        this.deps.log.error({ err: error, incident: incident.id }, "could not post"),
      );
    } else if (!this.postTimers.has(incident.id)) {
      this.postTimers.set(
        incident.id,
        this.deps.clock.setTimeout(() => {
          this.postTimers.delete(incident.id);
          this.notify(incident);
        }, due),
      );
    }
  }

  /**
   * The message is queued (durably, under an ID derived from the incident) before the incident records
   * it: a crash in between posts again under the same ID, which the outbox recognizes.
   */
  private async post(incident: Incident): Promise<void> {
    const messageId = `alert:${incident.id}`;
    incident.postedAt = this.deps.clock.now();
    await this.sendMessage(incident, messageId);
    incident.messageId = messageId;
    this.dirty.delete(incident.id);
    await this.persist([incident], this.deps.clock.now());
  }

  private async sendMessage(incident: Incident, id = incident.messageId!): Promise<void> {
    const { outbox } = this.deps;
    const rendered = this.render(incident);
    this.rendered.set(incident.id, rendered.markdown);
    this.shownState.set(incident.id, stateOf(incident));
    await outbox.send(incident.roomId, rendered, { id });
    const offers = [ACK, SILENCE, ...(incident.action ? [incident.action.emoji] : [])];
    for (const [n, key] of offers.entries())
      await outbox.react(incident.roomId, id, key, { id: `${id}:offer${n}` });
  }

  private render(incident: Incident) {
    const silence = incident.silencedBy ? this.silenceList.get(incident.silencedBy) : undefined;
    return renderIncident(incident, this.deps.clock.now(), silence);
  }

  private body(incident: Incident): string {
    return this.render(incident).markdown;
  }

  private async writeDirty(checkpoint = false): Promise<void> {
    const now = this.deps.clock.now();
    const dirty = [...this.dirty];
    const touched = [...this.touched].filter((id) => !this.dirty.has(id));
    this.dirty.clear();
    if (this.sequenceDirty) {
      this.sequenceDirty = false;
      await this.deps.store.set(SEQUENCE, this.sequence);
    }
    const due = touched.filter(
      (id) => checkpoint || now - (this.storedAt.get(id) ?? -Infinity) >= CHECKPOINT_MS,
    );
    const writing = [...dirty, ...due].flatMap((id) => {
      const incident = this.incidents.get(id);
      return incident ? [incident] : [];
    });
    await this.persist(writing, now);
    for (const id of touched) if (!due.includes(id)) this.notifyById(id);
  }

  /** Stores incidents in one batch, then shows them. A change made meanwhile stays marked for later. */
  private async persist(incidents: Incident[], now: number): Promise<void> {
    const writing = incidents.map((incident) => {
      this.touched.delete(incident.id);
      const changed = this.changedMembers.get(incident.id) ?? new Set<string>();
      this.changedMembers.delete(incident.id);
      return { incident, changed };
    });
    try {
      await this.deps.store.setMany(
        writing.flatMap(({ incident, changed }) => incidentEntries(incident, changed)),
      );
    } catch (error) {
      // Written at the next flush instead, with what changed meanwhile.
      for (const { incident, changed } of writing) {
        this.dirty.add(incident.id);
        const since = this.changedMembers.get(incident.id);
        this.changedMembers.set(incident.id, since ? new Set([...changed, ...since]) : changed);
      }
      throw error;
    }
    for (const incident of incidents) {
      this.storedAt.set(incident.id, now);
      this.notify(incident);
    }
  }

  private notifyById(id: string): void {
    const incident = this.incidents.get(id);
    if (incident) this.notify(incident);
  }

  // --- holds (flap damping) -------------------------------------------------------------------

  private armHold(key: string, hold: Hold): void {
    this.holds.set(key, hold);
    this.deps.clock.clearTimeout(this.holdTimers.get(key));
    this.holdTimers.set(
      key,
      this.deps.clock.setTimeout(
        () => {
          this.holdTimers.delete(key);
          if (this.holds.get(key) !== hold) return;
          this.holds.delete(key);
          this.apply(hold.signal);
          void this.deps.store
            .delete(HOLDS + key)
            .then(() => this.flush())
            .catch((error: unknown) => this.deps.log.error({ err: error }, "could not apply a held signal"));
        },
        Math.max(0, hold.until - this.deps.clock.now()),
      ),
    );
  }

  private async dropHold(key: string): Promise<void> {
    this.holds.delete(key);
    this.deps.clock.clearTimeout(this.holdTimers.get(key));
    this.holdTimers.delete(key);
    await this.deps.store.delete(HOLDS + key);
  }

  // --- reactions ------------------------------------------------------------------------------

  private async incidentOfEvent(roomId: string, eventId: string): Promise<Incident | undefined> {
    for (const incident of this.incidents.values()) {
      if (incident.roomId !== roomId || !incident.messageId) continue;
      if ((await this.deps.outbox.eventIdOf(incident.messageId)) === eventId) return incident;
    }
    return undefined;
  }

  private async acknowledgeByReaction(incident: Incident, sender: string): Promise<void> {
    if (incident.state !== "firing" || incident.ack) return;
    const verdict = await this.deps.mayAct(sender, "incident ack");
    if (!verdict.allowed)
      return this.explain(incident, `${sender}: your ${ACK} does not acknowledge: ${verdict.reason}`);
    incident.ack = { by: sender, at: this.deps.clock.now() };
    this.markChanged(incident);
    await this.flush();
  }

  private async silenceByReaction(incident: Incident, sender: string): Promise<void> {
    if (incident.state !== "firing") return;
    const verdict = await this.deps.mayAct(sender, "incident silence");
    if (!verdict.allowed)
      return this.explain(incident, `${sender}: your ${SILENCE} does not silence: ${verdict.reason}`);
    const silence = await this.silence(
      { incident: incident.id },
      this.deps.timings.reactionSilenceMs,
      sender,
      `${SILENCE} on the incident message`,
    );
    await this.explain(
      incident,
      `${SILENCE} Silenced by ${sender} until ${clockTime(silence.endsAt)} (silence ${code(silence.id)}; \`!unsilence ${silence.id}\` ends it).`,
    );
  }

  private async explain(incident: Incident, text: string): Promise<void> {
    await this.deps.outbox.send(incident.roomId, message(text), { threadRoot: incident.messageId! });
  }

  // --- silences -------------------------------------------------------------------------------

  private addSilence(silence: Silence): void {
    this.silenceList.set(silence.id, silence);
    this.silenceTimers.set(
      silence.id,
      this.deps.clock.setTimeout(
        () => {
          void this.expireSilence(silence).catch((error: unknown) =>
            this.deps.log.error({ err: error, silence: silence.id }, "could not end a silence"),
          );
        },
        Math.max(0, silence.endsAt - this.deps.clock.now()),
      ),
    );
  }

  private async expireSilence(silence: Silence): Promise<void> {
    this.silenceList.delete(silence.id);
    this.deps.clock.clearTimeout(this.silenceTimers.get(silence.id));
    this.silenceTimers.delete(silence.id);
    await this.deps.store.delete(SILENCES + silence.id);
    for (const incident of this.incidents.values())
      if (incident.silencedBy === silence.id) this.markChanged(incident);
    await this.flush();
  }

  // --- housekeeping ---------------------------------------------------------------------------

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > SEEN_KEPT) this.seen.delete(this.seen.values().next().value!);
  }

  private async nextSequence(): Promise<number> {
    ++this.sequence;
    await this.deps.store.set(SEQUENCE, this.sequence);
    return this.sequence;
  }

  private async prune(now: number): Promise<void> {
    for (const incident of [...this.incidents.values()]) {
      if (incident.state !== "resolved" || now - (incident.resolvedAt ?? now) <= this.deps.timings.historyMs)
        continue;
      this.incidents.delete(incident.id);
      this.rendered.delete(incident.id);
      if (this.current.get(incident.key) === incident) this.current.delete(incident.key);
      this.changedMembers.delete(incident.id);
      await deleteIncident(this.deps.store, incident);
    }
  }
}

/** 66 bits of a signal ID's SHA-256: IDs run to 150 characters, and the incident record keeps 32. */
const signalDigest = (id: string): string => hash("sha256", id, "base64url").slice(0, 11);

/** What must be shown at once when it changes. */
function stateOf(incident: Incident): string {
  return `${incident.state}|${incident.reopened}|${incident.ack?.by ?? ""}|${incident.silencedBy ?? ""}`;
}

function severityOrder(incident: Incident): number {
  return incident.severity === "critical" ? 2 : incident.severity === "warning" ? 1 : 0;
}
