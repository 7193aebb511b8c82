import { digestOf } from "../src/auth/digest.js";
import { code, message } from "../src/chat/message.js";
import { NomadError, type NomadServices } from "../src/backends/nomad/index.js";
import { diffFacts, diffIsEmpty, renderPlan } from "../src/backends/nomad/render.js";
import type { Job } from "../src/backends/nomad/types.js";
import type { CommandContext, Services } from "../src/commands/context.js";
import { defineCommand, type CommandSpec, type Plan } from "../src/commands/declare.js";
import { name } from "../src/commands/types.js";
import type { ActionRecord } from "../src/state/journal.js";
import { followRollout, type FollowContext } from "./deployment-follow.js";
import { jobName, nomadOf } from "./nomad-common.js";

const variable = name("variable", /^[A-Za-z_][A-Za-z0-9_-]{0,63}=[^\n]{0,500}$/, "name=value", 600);

interface DeployGuard {
  job: Job;
  jobModifyIndex: number;
  source: string;
  variables: Record<string, string>;
}

interface DeployArgs {
  job: string;
  vars?: string[];
  [key: string]: unknown;
}

async function planDeploy(ctx: CommandContext, nomad: NomadServices, args: DeployArgs): Promise<Plan> {
  if (!nomad.jobFiles) throw new Error("no jobs directory is configured (nomad.jobs_dir)");
  const file = await nomad.jobFiles.read(args.job);
  const variables = Object.fromEntries(
    (args.vars ?? []).map((v) => [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)]),
  );
  const job = await nomad.client.parse(file.hcl, variables);
  if (job.ID !== args.job) throw new Error(`${file.path} defines job ${code(job.ID)}, not ${code(args.job)}`);
  const plan = await nomad.client.plan(job);
  const origin = `${code(file.path)}${file.commit ? ` at commit ${code(file.commit)}` : ""}`;
  const guard: DeployGuard = { job, jobModifyIndex: plan.JobModifyIndex, source: file.hcl, variables };
  return {
    summary: renderPlan(job.ID, plan, origin),
    facts: {
      job: job.ID,
      jobModifyIndex: plan.JobModifyIndex,
      unchanged: diffIsEmpty(plan),
      changes: diffFacts(plan.Diff),
      commit: file.commit,
      path: file.path,
      variables,
    },
    guard,
  };
}

const deploy = defineCommand<DeployArgs>({
  name: "deploy",
  summary: "Plan a job from the jobs directory, show the diff, then run it and follow it until healthy",
  args: [
    { name: "job", type: jobName },
    { name: "vars", type: variable, optional: true, rest: true },
  ],
  plan: (ctx, args) => planDeploy(ctx, nomadOf(ctx), args),
  async run(ctx, args, approved) {
    const nomad = nomadOf(ctx);
    const plan = approved ?? (await planDeploy(ctx, nomad, args));
    const guard = plan.guard as DeployGuard;
    if (!approved) await ctx.reply(message(plan.summary));
    if ((plan.facts as { unchanged: boolean }).unchanged) {
      return message(`Nothing to deploy: ${code(args.job)} already runs this.`);
    }
    // The deploy is an action of its own in the journal, begun before anything reaches Nomad: its
    // registration (evaluation and progress message) is a step, so that a restart follows the rollout
    // again instead of registering again. On the approved path the pipeline's own record of the request
    // has no steps; this one is named after the request's thread and the plan's digest.
    const digest = digestOf(plan.facts);
    const actionId = `deploy-${ctx.eventId}${approved ? `-${digest.slice(0, 12)}` : ""}`;
    const placement = approved ? { threadRoot: ctx.eventId } : { replyTo: ctx.eventId };
    const { fresh } = await ctx.services.journal.begin({
      id: actionId,
      kind: "deploy",
      args: { job: args.job, vars: args.vars ?? [], digest, prefix: ctx.prefix, ...placement },
      requester: ctx.identity.sender,
      roomId: ctx.roomId,
    });
    if (!fresh) return message("This request was already handled.");
    let registered: Registered;
    try {
      registered = await ctx.services.journal.step(actionId, "registered", async (): Promise<Registered> => {
        const answer = await nomad.client.register(guard.job, guard.jobModifyIndex, {
          source: guard.source,
          variables: Object.entries(guard.variables)
            .map(([k, v]) => `${k}=${v}`)
            .join("\n"),
        });
        const progressId = await ctx.reply(
          message(
            `⏳ **Deploying ${code(args.job)}** (plan ${code(digest)}): evaluation ${code(answer.EvalID.slice(0, 8))}…`,
          ),
        );
        return { evalId: answer.EvalID, progressId };
      });
    } catch (error) {
      if (error instanceof NomadError && error.kind === "conflict") {
        // Answered before the action is closed: a restart in between finds it running and says so.
        await ctx.reply(
          message(
            `⚠️ Not deployed: ${error.message}. Nothing was submitted; say ${code(`${ctx.prefix}deploy ${args.job}`)} to plan again.`,
          ),
        );
        await ctx.services.journal.finish(actionId, "failed", error.message);
        return;
      }
      await ctx.services.journal.finish(actionId, "failed", (error as Error).message);
      throw error;
    }
    ctx.background(`deploying ${args.job}`, async () => {
      await ctx.reply(message(await followAndClose(ctx, nomad, actionId, args.job, registered)));
      await ctx.services.journal.finish(actionId, "succeeded");
    });
  },
});

interface Registered {
  evalId: string;
  /** The progress message: an outbox reference, which the outbox resolves after a restart too. */
  progressId: string;
}

/** Follows a registered deploy to its end; the final sentence. The action is failed if following fails. */
async function followAndClose(
  ctx: FollowContext,
  nomad: NomadServices,
  actionId: string,
  job: string,
  registered: Registered,
  registeredAt?: number,
): Promise<string> {
  try {
    const status = await followRollout(
      ctx,
      nomad,
      job,
      registered.evalId,
      registered.progressId,
      registeredAt,
    );
    return status === "successful"
      ? `✅ ${code(job)} is deployed and healthy.`
      : `❌ ${code(job)}: deployment ${status}.`;
  } catch (error) {
    await ctx.services.journal.finish(actionId, "failed", (error as Error).message);
    throw error;
  }
}

interface DeployActionArgs {
  job: string;
  digest?: string;
  prefix?: string;
}

/**
 * Resumes a deploy a restart interrupted. A deploy whose registration is recorded is followed again from
 * its evaluation, editing the same progress message; it is never registered again. One interrupted before
 * its registration was recorded is closed, not retried: whether Nomad got it is not known.
 * On the approved path the pipeline's record of the request (no digest in its arguments) is closed
 * according to the deploy action it started, if any.
 */
export async function resumeDeploy(services: Services, action: ActionRecord): Promise<string> {
  const { journal, outbox } = services;
  const args = action.args as unknown as DeployActionArgs;
  if (args.digest === undefined) return closeApprovedRequest(services, action);
  const step = action.steps.find((s) => s.name === "registered");
  const registered = step?.result as Registered | undefined;
  if (!step || !registered) {
    const why = "interrupted before its registration was recorded";
    await journal.finish(action.id, "interrupted", why);
    return `⚠️ the deploy of ${code(args.job)} was ${why}: Nomad may or may not have received it, and it is not submitted again. ${code(`${args.prefix ?? "!"}status ${args.job}`)} shows where it is.`;
  }
  const nomad = services.nomad;
  if (!nomad) {
    await journal.finish(action.id, "interrupted", "Nomad is not configured any more");
    throw new Error("Nomad is not configured any more");
  }
  let threads = 0;
  const ctx: FollowContext = {
    services,
    roomId: action.roomId,
    prefix: args.prefix ?? "!",
    edit: (id, msg) => outbox.edit(action.roomId, id, msg),
    thread: (root, msg) =>
      outbox.send(action.roomId, msg, { id: `${action.id}#resumed-t${threads++}`, threadRoot: root }),
  };
  // Left running: the resumer closes it once its report is in the outbox, so a kill in between loses nothing.
  return followAndClose(ctx, nomad, action.id, args.job, registered, step.at);
}

async function closeApprovedRequest(services: Services, action: ActionRecord): Promise<string> {
  const { journal } = services;
  const job = (action.args as { job?: string }).job ?? "?";
  // Any status: the deploy's own follow-up may have been resumed, and ended, before this record's turn.
  const records = (await services.store.list<ActionRecord>("journal/")).map((entry) => entry.value);
  const started = records.find(
    (a) =>
      a.kind === "deploy" &&
      a.id !== action.id &&
      a.roomId === action.roomId &&
      (a.args as unknown as DeployActionArgs).digest !== undefined &&
      (a.args as unknown as DeployActionArgs).job === job &&
      a.startedAt >= action.startedAt &&
      a.steps.some((s) => s.name === "registered"),
  );
  if (started) {
    const outcome =
      started.status === "running"
        ? `registered; its rollout is followed again (action ${code(started.id)})`
        : `registered; its follow-up ended ${started.status} (action ${code(started.id)})`;
    await journal.finish(action.id, "succeeded");
    return `the approved deploy of ${code(job)} was ${outcome}.`;
  }
  const why = "interrupted before a registration was recorded";
  await journal.finish(action.id, "interrupted", why);
  return `⚠️ the approved deploy of ${code(job)} was ${why}; it is not submitted again. Check ${code(`!status ${job}`)} before asking again.`;
}

export const deployCommands: CommandSpec[] = [deploy];
