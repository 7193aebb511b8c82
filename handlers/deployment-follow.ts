import { code, message } from "../src/chat/message.js";
import type { NomadServices } from "../src/backends/nomad/index.js";
import { placementFailure, renderDeployment, renderFailures } from "../src/backends/nomad/render.js";
import type { Allocation, Deployment } from "../src/backends/nomad/types.js";
import type { CommandContext } from "../src/commands/context.js";

const TERMINAL = new Set(["successful", "failed", "cancelled"]);

/**
 * What following a rollout needs of its command: a command's context, or, when a restart resumes the
 * follow-up of a deploy, one made from the services and what the action journal recorded.
 */
export type FollowContext = Pick<CommandContext, "services" | "roomId" | "prefix" | "edit" | "thread">;
const LONG_POLL_MS = 30_000;

/**
 * Follows what a registration started — its evaluation, then its deployment — in one message edited in
 * place, until the deployment succeeds, fails (with the failing allocations' reasons in the thread), or
 * the deploy timeout passes. Returns the final status.
 */
export async function followRollout(
  ctx: FollowContext,
  nomad: NomadServices,
  job: string,
  evalId: string,
  progressId: string,
  /** When the rollout began: a follow resumed after a restart keeps the first one's deadline. */
  started = ctx.services.clock.now(),
): Promise<string> {
  const { clock } = ctx.services;
  const deadline = started + nomad.deployTimeoutMs;
  const wait = () => Math.max(1, Math.min(LONG_POLL_MS, deadline - clock.now()));

  let { value: evaluation, index } = await nomad.client.evaluation(evalId);
  while (evaluation.Status === "pending" && clock.now() < deadline) {
    ({ value: evaluation, index } = await nomad.client.evaluation(evalId, { index, waitMs: wait() }));
  }
  const failed = Object.entries(evaluation.FailedTGAllocs ?? {});
  if (failed.length > 0) {
    const why = failed.map(([group, metric]) => `${code(group)}: ${placementFailure(metric)}`).join("; ");
    await ctx.edit(progressId, message(`❌ **${code(job)}** could not be placed: ${why}`));
    return "failed";
  }
  if (evaluation.Status === "pending") return timedOut(ctx, job, progressId, nomad);
  if (!evaluation.DeploymentID) {
    await ctx.edit(
      progressId,
      message(`✅ **${code(job)}**: registered; nothing to roll out (evaluation ${evaluation.Status}).`),
    );
    return "successful";
  }

  // Allocation failures of this deployment go to this message's thread, not to the alert room.
  const unfollow = ctx.services.alerts?.followDeployment(evaluation.DeploymentID, ctx.roomId, progressId);
  try {
    return await followDeployment(ctx, nomad, job, evaluation.DeploymentID, progressId, started, deadline);
  } finally {
    unfollow?.();
  }
}

async function followDeployment(
  ctx: FollowContext,
  nomad: NomadServices,
  job: string,
  deploymentId: string,
  progressId: string,
  started: number,
  deadline: number,
): Promise<string> {
  const { clock } = ctx.services;
  const wait = () => Math.max(1, Math.min(LONG_POLL_MS, deadline - clock.now()));
  let deploymentIndex = 0;
  let lastShown = "";
  let deployment: Deployment | undefined;
  while (clock.now() < deadline) {
    const answer = await nomad.client.deployment(deploymentId, {
      index: deploymentIndex,
      waitMs: wait(),
    });
    deployment = answer.value;
    deploymentIndex = answer.index;
    // Nomad's index moves for changes the room does not see: edit only when the message would change.
    const shown = renderDeployment(job, deployment, clock.now() - started);
    if (shown !== lastShown) await ctx.edit(progressId, message(shown));
    lastShown = shown;
    if (TERMINAL.has(deployment.Status)) break;
  }
  if (!deployment || !TERMINAL.has(deployment.Status)) return timedOut(ctx, job, progressId, nomad);
  if (deployment.Status === "failed") await explainFailure(ctx, nomad, job, deployment, progressId);
  return deployment.Status;
}

async function timedOut(
  ctx: FollowContext,
  job: string,
  progressId: string,
  nomad: NomadServices,
): Promise<string> {
  await ctx.thread(
    progressId,
    message(
      `⏱️ Stopped following ${code(job)} after ${Math.round(nomad.deployTimeoutMs / 60_000)} min; Nomad goes on. ${code(`${ctx.prefix}status ${job}`)} shows where it is.`,
    ),
  );
  return "timeout";
}

async function explainFailure(
  ctx: FollowContext,
  nomad: NomadServices,
  job: string,
  deployment: Deployment,
  progressId: string,
): Promise<void> {
  const { value: allocations } = await nomad.client.allocations(job);
  const failing = allocations
    // Allocation stubs carry no deployment ID: the deployment's job version identifies its allocations.
    .filter(
      (a) =>
        a.JobVersion === deployment.JobVersion &&
        (a.ClientStatus === "failed" || a.DeploymentStatus?.Healthy === false),
    )
    .slice(0, 3);
  const details = await Promise.all(failing.map((alloc) => withStderr(nomad, alloc)));
  const text = details.length ? renderFailures(details) : "No failing allocation was found.";
  await ctx.thread(progressId, message(`Why ${code(job)} failed:\n\n${text}`));
}

async function withStderr(
  nomad: NomadServices,
  alloc: Allocation,
): Promise<{ alloc: Allocation; stderr: Record<string, string> }> {
  const full = await nomad.client.allocation(alloc.ID);
  const stderr: Record<string, string> = {};
  for (const task of Object.keys(full.TaskStates ?? {})) {
    try {
      stderr[task] = await nomad.client.logs(full.ID, task, "stderr", 4096);
    } catch {
      // Logs are best effort: a node that is down cannot serve them.
    }
  }
  return { alloc: full, stderr };
}
