import { code, table } from "../../chat/message.js";
import type {
  Allocation,
  AllocMetric,
  Deployment,
  FieldDiff,
  JobDiff,
  ObjectDiff,
  PlanResponse,
  TaskEvent,
} from "./types.js";

const MAX_DIFF_LINES = 40;

/** A plan, as people read it: what happens to each group, what changes (old → new), what cannot be placed. */
export function renderPlan(job: string, plan: PlanResponse, origin?: string): string {
  const lines = [
    `**Plan for ${code(job)}**${origin ? ` (${origin})` : ""}: ${describeDiffType(plan.Diff?.Type)}`,
  ];
  const updates = plan.Annotations?.DesiredTGUpdates ?? {};
  const rows = Object.entries(updates).map(([group, u]) => [
    code(group),
    ...["Place", "InPlaceUpdate", "DestructiveUpdate", "Stop", "Canary", "Migrate", "Ignore"].map((k) =>
      String(u[k] ?? 0),
    ),
  ]);
  if (rows.length)
    lines.push(
      "",
      table(["group", "place", "in-place", "destructive", "stop", "canary", "migrate", "ignore"], rows),
    );
  const changes = diffLines(plan.Diff);
  if (changes.length) {
    lines.push("", "**Changes**", "", ...changes.slice(0, MAX_DIFF_LINES));
    if (changes.length > MAX_DIFF_LINES) lines.push(`- … and ${changes.length - MAX_DIFF_LINES} more`);
  }
  for (const [group, metric] of Object.entries(plan.FailedTGAllocs ?? {})) {
    lines.push("", `⚠️ ${code(group)} cannot be placed: ${placementFailure(metric)}`);
  }
  if (plan.Warnings) lines.push("", `Nomad warns: ${plan.Warnings.trim()}`);
  return lines.join("\n");
}

export function diffIsEmpty(plan: PlanResponse): boolean {
  return !plan.Diff || plan.Diff.Type === "None";
}

/** The diff reduced to what people approve: every changed field with its old and new value. */
export function diffFacts(diff: JobDiff | null): string[] {
  return diffLines(diff);
}

function describeDiffType(type: string | undefined): string {
  switch (type) {
    case "Added":
      return "a new job";
    case "Deleted":
      return "the job will be removed";
    case "None":
    case undefined:
      return "nothing changes";
    default:
      return "the job changes";
  }
}

function diffLines(diff: JobDiff | null): string[] {
  if (!diff || diff.Type === "None") return [];
  if (diff.Type === "Added") return addedJob(diff);
  const out: string[] = [];
  out.push(...fields("job", diff.Fields), ...objects("job", diff.Objects));
  for (const group of diff.TaskGroups ?? []) {
    if (group.Type === "None") continue;
    const where = `group ${group.Name}`;
    if (group.Type !== "Edited") out.push(`- ${where}: ${group.Type.toLowerCase()}`);
    out.push(...fields(where, group.Fields), ...objects(where, group.Objects));
    for (const task of group.Tasks ?? []) {
      if (task.Type === "None") continue;
      const at = `${where} › task ${task.Name}`;
      const notes = task.Annotations?.length ? ` (${task.Annotations.join(", ")})` : "";
      if (task.Type !== "Edited" || notes) out.push(`- ${at}: ${task.Type.toLowerCase()}${notes}`);
      out.push(...fields(at, task.Fields), ...objects(at, task.Objects));
    }
  }
  return out;
}

/** A new job: its groups and tasks, not every default value Nomad fills in. */
function addedJob(diff: JobDiff): string[] {
  const field = (list: FieldDiff[] | null | undefined, name: string) =>
    list?.find((f) => f.Name === name)?.New;
  return (diff.TaskGroups ?? []).flatMap((group) => [
    `- group ${group.Name}: new, count ${field(group.Fields, "Count") ?? "1"}`,
    ...(group.Tasks ?? []).map((task) => {
      const config = task.Objects?.find((o) => o.Name === "Config");
      const image = field(config?.Fields, "image");
      return `- group ${group.Name} › task ${task.Name}: new (${field(task.Fields, "Driver") ?? "?"}${image ? `, ${code(image)}` : ""})`;
    }),
  ]);
}

function fields(where: string, list: FieldDiff[] | null | undefined): string[] {
  return (list ?? [])
    .filter((f) => typeof f === "object" && f.Type !== "None")
    .map((f) => {
      const notes = f.Annotations?.length ? ` (${f.Annotations.join(", ")})` : "";
      if (f.Type === "Added") return `- ${where} › ${f.Name}: + ${code(f.New)}${notes}`;
      if (f.Type === "Deleted") return `- ${where} › ${f.Name}: − ${code(f.Old)}${notes}`;
      return `- ${where} › ${f.Name}: ${code(f.Old)} → ${code(f.New)}${notes}`;
    });
}

function objects(where: string, list: ObjectDiff[] | null | undefined): string[] {
  return (list ?? [])
    .filter((o) => typeof o === "object" && o.Type !== "None")
    .flatMap((o) => [
      ...fields(`${where} › ${o.Name}`, o.Fields),
      ...objects(`${where} › ${o.Name}`, o.Objects),
    ]);
}

export function placementFailure(metric: AllocMetric): string {
  const parts: string[] = [];
  if (metric.NodesEvaluated !== undefined) parts.push(`${metric.NodesEvaluated} node(s) evaluated`);
  for (const [dimension, count] of Object.entries(metric.DimensionExhausted ?? {}))
    parts.push(`${dimension} exhausted on ${count}`);
  for (const [constraint, count] of Object.entries(metric.ConstraintFiltered ?? {}))
    parts.push(`${constraint} filtered ${count}`);
  if (metric.CoalescedFailures) parts.push(`${metric.CoalescedFailures + 1} allocations`);
  return parts.join("; ") || "no node fits";
}

/** One progress message for a deployment, edited in place. */
export function renderDeployment(job: string, deployment: Deployment, elapsedMs: number): string {
  const rows = Object.entries(deployment.TaskGroups ?? {}).map(([group, s]) => [
    code(group),
    String(s.DesiredTotal),
    String(s.PlacedAllocs),
    String(s.HealthyAllocs),
    String(s.UnhealthyAllocs),
    s.DesiredCanaries
      ? `${s.PlacedCanaries?.length ?? 0}/${s.DesiredCanaries}${s.Promoted ? " promoted" : ""}`
      : "—",
  ]);
  const icon =
    { successful: "✅", failed: "❌", cancelled: "🚫", running: "⏳", paused: "⏸️", pending: "⏳" }[
      deployment.Status
    ] ?? "⏳";
  return [
    `${icon} **Deploying ${code(job)}** version ${deployment.JobVersion}: ${deployment.Status} — ${deployment.StatusDescription} (${Math.round(elapsedMs / 1000)} s)`,
    "",
    table(["group", "desired", "placed", "healthy", "unhealthy", "canaries"], rows),
  ].join("\n");
}

/** Why allocations failed: their last task events (exit code, OOM, driver failure) and stderr. */
export function renderFailures(
  failures: Array<{ alloc: Allocation; stderr: Record<string, string> }>,
): string {
  const lines: string[] = [];
  for (const { alloc, stderr } of failures) {
    lines.push(
      `**${code(alloc.Name)}** (${code(alloc.ID.slice(0, 8))} on ${alloc.NodeName ?? alloc.NodeID.slice(0, 8)}): ${alloc.ClientStatus}`,
    );
    for (const [task, state] of Object.entries(alloc.TaskStates ?? {})) {
      const events = (state.Events ?? []).slice(-3).map(describeTaskEvent);
      lines.push(
        `- task ${code(task)} ${state.State}${state.Failed ? ", failed" : ""}, ${state.Restarts} restart(s): ${events.join(" → ")}`,
      );
      const tail = stderr[task]?.trimEnd().split("\n").slice(-8).join("\n");
      if (tail) lines.push("", "```", tail, "```");
    }
  }
  return lines.join("\n");
}

export function describeTaskEvent(event: TaskEvent): string {
  const details = event.Details ?? {};
  if (event.Type === "Terminated") {
    const exit = details.exit_code ?? String(event.ExitCode ?? "?");
    return details.oom_killed === "true" ? `OOM-killed (exit ${exit})` : `exited with code ${exit}`;
  }
  const message =
    event.DisplayMessage || event.DriverError || details.driver_error || details.restart_reason || "";
  return message ? `${event.Type}: ${message}` : event.Type;
}
