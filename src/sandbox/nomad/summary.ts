import type { Allocation, Job, JobSummary, TaskGroupSummary } from "./types.js";

const emptyGroup = (): TaskGroupSummary => ({
  Queued: 0,
  Complete: 0,
  Failed: 0,
  Running: 0,
  Starting: 0,
  Lost: 0,
  Unknown: 0,
});

/**
 * The job summary (allocations per group by client status, plus what waits to be placed). Returns
 * undefined when nothing changed, so the job_summary index only moves on a real change.
 */
export function summarize(
  job: Job,
  allocs: Allocation[],
  queued: Record<string, number>,
  previous: JobSummary | undefined,
): JobSummary | undefined {
  const groups: Record<string, TaskGroupSummary> = {};
  for (const tg of job.TaskGroups ?? []) groups[tg.Name] = { ...emptyGroup(), Queued: queued[tg.Name] ?? 0 };
  for (const alloc of allocs) {
    const group = (groups[alloc.TaskGroup] ??= emptyGroup());
    count(group, alloc);
  }
  const next: JobSummary = {
    JobID: job.ID,
    Namespace: job.Namespace,
    Summary: groups,
    Children: { Pending: 0, Running: 0, Dead: 0 },
    CreateIndex: previous?.CreateIndex ?? 0,
    ModifyIndex: previous?.ModifyIndex ?? 0,
  };
  return previous !== undefined && JSON.stringify(previous.Summary) === JSON.stringify(next.Summary)
    ? undefined
    : next;
}

function count(group: TaskGroupSummary, alloc: Allocation): void {
  switch (alloc.ClientStatus) {
    case "pending":
      group.Starting += 1;
      break;
    case "running":
      group.Running += 1;
      break;
    case "complete":
      group.Complete += 1;
      break;
    case "failed":
      group.Failed += 1;
      break;
    case "lost":
      group.Lost += 1;
      break;
    case "unknown":
      group.Unknown += 1;
      break;
  }
}
