import { code, message, table } from "../src/chat/message.js";
import type { NomadClient, NomadServices } from "../src/backends/nomad/index.js";
import { describeTaskEvent, placementFailure } from "../src/backends/nomad/render.js";
import type { Allocation, FullAllocation, NomadNode } from "../src/backends/nomad/types.js";
import type { CommandContext } from "../src/commands/context.js";
import { formatDuration } from "../src/config/duration.js";
import { isRunning, shortId } from "./nomad-common.js";

const LONG_POLL_MS = 30_000;
/** How long past its deadline a drain is followed: Nomad marks it complete at the deadline. */
const FOLLOW_GRACE_MS = 2 * 60_000;

const clientTerminal = (a: Allocation): boolean => ["complete", "failed", "lost"].includes(a.ClientStatus);

export interface DrainToFollow {
  nodeId: string;
  name: string;
  deadlineMs: number;
  /** The allocations the drain moves (or stops, for system jobs), as the pre-flight listed them. */
  tracked: string[];
}

export type DrainEnd = "complete" | "deadline" | "canceled" | "timeout";

/**
 * Follows a drain in one message edited in place — what is still on the node, what moved where — until
 * Nomad ends the drain (complete, at its deadline, or cancelled) or the deadline plus a grace period
 * passes. Blocks on the node's allocations while some are left on it, then on the node itself (the
 * drain ends a moment after the last one stops).
 */
export async function followDrain(
  ctx: CommandContext,
  nomad: NomadServices,
  drain: DrainToFollow,
  progressId: string,
): Promise<{ end: DrainEnd; text: string }> {
  const { clock } = ctx.services;
  const { client } = nomad;
  const started = clock.now();
  const until = started + drain.deadlineMs + FOLLOW_GRACE_MS;
  const tracked = new Set(drain.tracked);
  let allocIndex = 0;
  let nodeIndex = 0;
  let lastShown = "";
  let watchNode = false;
  let end: DrainEnd | undefined;
  let rows: DrainRow[] = [];
  const show = async () => {
    const shown = renderDrain(drain, rows, end);
    if (shown !== lastShown) await ctx.edit(progressId, message(shown));
    lastShown = shown;
  };
  while (!end) {
    const waitMs = Math.max(1, Math.min(LONG_POLL_MS, until - clock.now()));
    let node: NomadNode;
    let allocs: FullAllocation[];
    if (watchNode) {
      ({ value: node, index: nodeIndex } = await client.node(drain.nodeId, { index: nodeIndex, waitMs }));
      allocs = await client.nodeAllocations(drain.nodeId);
    } else {
      ({ value: allocs, index: allocIndex } = await client.watchNodeAllocations(drain.nodeId, {
        index: allocIndex,
        waitMs,
      }));
      ({ value: node, index: nodeIndex } = await client.node(drain.nodeId));
    }
    rows = await drainRows(
      client,
      allocs.filter((a) => tracked.has(a.ID)),
    );
    end = drainEnd(node);
    if (!end && clock.now() >= until) end = "timeout";
    await show();
    watchNode = rows.every((r) => !r.onNode);
  }
  // Nomad ends a drain once the old allocations stop; their replacements may still be starting.
  const settleBy = clock.now() + nomad.deployTimeoutMs;
  while ((end === "complete" || end === "deadline") && !rows.every(settled) && clock.now() < settleBy) {
    const waitMs = Math.max(1, Math.min(LONG_POLL_MS, settleBy - clock.now()));
    // This query's index moves with any allocation of the cluster: the replacements' changes wake it.
    const answer = await client.watchNodeAllocations(drain.nodeId, { index: allocIndex, waitMs });
    allocIndex = answer.index;
    rows = await drainRows(
      client,
      answer.value.filter((a) => tracked.has(a.ID)),
    );
    await show();
  }
  return { end, text: outcomeText(ctx, drain, rows, end, formatDuration(clock.now() - started)) };
}

/** A row whose replacement is running and healthy, has failed, or was never placed (queued). */
function settled(row: DrainRow): boolean {
  if (row.onNode) return false;
  const next = row.replacement;
  if (!next) return true;
  return healthy(next) || next.ClientStatus === "failed" || next.DeploymentStatus?.Healthy === false;
}

interface DrainRow {
  alloc: FullAllocation;
  onNode: boolean;
  replacement?: FullAllocation;
}

async function drainRows(client: NomadClient, allocs: FullAllocation[]): Promise<DrainRow[]> {
  const rows = allocs.map((alloc) => ({ alloc, onNode: !clientTerminal(alloc) }));
  return Promise.all(
    rows
      .sort((a, b) => a.alloc.Name.localeCompare(b.alloc.Name))
      .map(async (row) =>
        row.alloc.NextAllocation
          ? { ...row, replacement: await client.allocation(row.alloc.NextAllocation) }
          : row,
      ),
  );
}

/** The node event Nomad's drainer writes when a drain ends (drainer.NodeDrainEventComplete). */
const DRAIN_COMPLETE = "Node drain complete";

function drainEnd(node: NomadNode): DrainEnd | undefined {
  if (node.DrainStrategy) return undefined;
  if (node.LastDrain?.Status === "canceled") return "canceled";
  const completed = (node.Events ?? []).filter((e) => e.Message === DRAIN_COMPLETE).at(-1);
  return completed?.Details?.deadline_reached === "true" ? "deadline" : "complete";
}

function rowState(row: DrainRow): string {
  const { alloc, replacement } = row;
  if (replacement) {
    const where = `${row.onNode ? "stopping; " : ""}moved → ${code(replacement.NodeName ?? shortId(replacement.NodeID))}`;
    if (healthy(replacement)) return `✅ ${where} (running)`;
    if (replacement.ClientStatus === "failed" || replacement.DeploymentStatus?.Healthy === false)
      return `❌ ${where} (${replacement.ClientStatus === "failed" ? "failed" : "unhealthy"})`;
    return `⏳ ${where} (${isRunning(replacement) ? "running, not yet healthy" : "starting"})`;
  }
  if (alloc.DesiredTransition?.Migrate || alloc.DesiredStatus !== "run")
    return row.onNode ? "🚚 stopping" : "⚠️ stopped; its replacement waits for room";
  if (jobType(alloc) === "batch") return "⏳ batch: left to finish (until the deadline)";
  return row.onNode ? "⏳ waiting its turn" : `stopped (${alloc.ClientStatus})`;
}

const jobType = (a: FullAllocation): string => a.Job?.Type ?? a.JobType ?? "service";

/** Running, and for a service job, found healthy by its client. */
const healthy = (a: FullAllocation): boolean =>
  isRunning(a) && (jobType(a) !== "service" || a.DeploymentStatus?.Healthy === true);

function renderDrain(drain: DrainToFollow, rows: DrainRow[], end: DrainEnd | undefined): string {
  const left = rows.filter((r) => r.onNode).length;
  const moved = rows.filter((r) => r.replacement && healthy(r.replacement)).length;
  const icon = end === "complete" ? "✅" : end === "deadline" ? "⏱️" : end === "canceled" ? "⚠️" : "🚚";
  const state =
    end === "complete"
      ? "drained"
      : end === "deadline"
        ? "drained at its deadline"
        : end === "canceled"
          ? "drain cancelled"
          : "draining";
  const head = `${icon} **${code(drain.name)}: ${state}** — ${rows.length} allocation(s): ${left} still on the node, ${moved} running elsewhere`;
  if (rows.length === 0) return head;
  return [
    head,
    "",
    table(
      ["allocation", "job › group", "state"],
      rows.map((r) => [
        code(shortId(r.alloc.ID)),
        `${code(r.alloc.JobID)} › ${code(r.alloc.TaskGroup)}`,
        rowState(r),
      ]),
    ),
  ].join("\n");
}

function outcomeText(
  ctx: CommandContext,
  drain: DrainToFollow,
  rows: DrainRow[],
  end: DrainEnd,
  elapsed: string,
): string {
  const running = rows.filter((r) => r.replacement && healthy(r.replacement)).length;
  const waiting = rows.filter(
    (r) => !r.onNode && !r.replacement && r.alloc.DesiredTransition?.Migrate,
  ).length;
  const replacements =
    `${running} of ${rows.length} running elsewhere` +
    (waiting ? `, ${waiting} waiting in Nomad's queue for room` : "");
  const back = `${code(`${ctx.prefix}eligible ${drain.name} on`)} brings it back.`;
  switch (end) {
    case "complete":
      return `✅ ${code(drain.name)} is drained (${elapsed}): ${replacements}. It stays ineligible; ${back}`;
    case "deadline":
      return `⏱️ ${code(drain.name)} reached its drain deadline (${elapsed}): Nomad stopped what was left. ${replacements}. It stays ineligible; ${back}`;
    case "canceled":
      return `⚠️ The drain of ${code(drain.name)} was cancelled after ${elapsed}: ${rows.filter((r) => r.onNode).length} allocation(s) still there; ${replacements}.`;
    case "timeout":
      return `⏱️ Stopped following the drain of ${code(drain.name)} after ${elapsed}; Nomad goes on. ${code(`${ctx.prefix}nodes`)} shows where it is.`;
  }
}

export type Replaced = { ok: true; replacement: Allocation } | { ok: false; reason: string };

/**
 * Stops one allocation and waits until its replacement runs and is healthy (for a service job), or
 * says why not: it could not be placed, it failed, it was found unhealthy, or it took too long.
 */
export async function replaceAllocation(
  ctx: CommandContext,
  nomad: NomadServices,
  alloc: Allocation,
): Promise<Replaced> {
  const { clock } = ctx.services;
  const { client } = nomad;
  const deadline = clock.now() + nomad.deployTimeoutMs;
  const wait = () => Math.max(1, Math.min(LONG_POLL_MS, deadline - clock.now()));
  const { EvalID } = await client.stopAllocation(alloc.ID);
  let { value: evaluation, index } = await client.evaluation(EvalID);
  while (evaluation.Status === "pending" && clock.now() < deadline) {
    ({ value: evaluation, index } = await client.evaluation(EvalID, { index, waitMs: wait() }));
  }
  const unplaced = Object.values(evaluation.FailedTGAllocs ?? {})[0];
  if (unplaced) {
    return {
      ok: false,
      reason: `the replacement of ${code(shortId(alloc.ID))} could not be placed (${placementFailure(unplaced)}); it waits in Nomad's queue`,
    };
  }
  let allocIndex = 0;
  while (clock.now() < deadline) {
    const answer = await client.allocations(alloc.JobID, { index: allocIndex, waitMs: wait() });
    allocIndex = answer.index;
    const stopped = answer.value.find((a) => a.ID === alloc.ID);
    const next = answer.value.find((a) => a.ID === stopped?.NextAllocation);
    if (!next) continue;
    if (healthy(next)) return { ok: true, replacement: next };
    if (next.ClientStatus === "failed" || next.DeploymentStatus?.Healthy === false) {
      return { ok: false, reason: `its replacement ${code(shortId(next.ID))} ${failureOf(next)}` };
    }
  }
  return {
    ok: false,
    reason: `the replacement of ${code(shortId(alloc.ID))} was not running and healthy within ${formatDuration(nomad.deployTimeoutMs)}`,
  };
}

/** Task events that say why a task failed (the ones after them only say it will not restart). */
const CAUSES = new Set([
  "Driver Failure",
  "Terminated",
  "Setup Failure",
  "Failed Validation",
  "Failed Artifact Download",
  "Task hook failed",
  "Disk Resources Exceeded",
]);

function failureOf(alloc: Allocation): string {
  const events = Object.values(alloc.TaskStates ?? {})
    .flatMap((t) => t.Events ?? [])
    .sort((a, b) => a.Time - b.Time);
  const cause = events.filter((e) => CAUSES.has(e.Type)).at(-1);
  const last = events.at(-1);
  const why = [cause, last]
    .filter((e, i, all) => e !== undefined && all.indexOf(e) === i)
    .map((e) => describeTaskEvent(e!))
    .join(", then ");
  const where = alloc.NodeName ? ` on ${code(alloc.NodeName)}` : "";
  const status = alloc.ClientStatus === "failed" ? "failed" : "is unhealthy";
  return `${status}${where}${why ? `: ${why}` : ""}`;
}
