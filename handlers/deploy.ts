import { digestOf } from "../src/auth/digest.js";
import { code, message } from "../src/chat/message.js";
import { NomadError, type NomadServices } from "../src/backends/nomad/index.js";
import { diffFacts, diffIsEmpty, renderPlan } from "../src/backends/nomad/render.js";
import type { Job } from "../src/backends/nomad/types.js";
import type { CommandContext } from "../src/commands/context.js";
import { defineCommand, type CommandSpec, type Plan } from "../src/commands/declare.js";
import { name } from "../src/commands/types.js";
import { followRollout } from "./deployment-follow.js";
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
    let registered;
    try {
      registered = await nomad.client.register(guard.job, guard.jobModifyIndex, {
        source: guard.source,
        variables: Object.entries(guard.variables)
          .map(([k, v]) => `${k}=${v}`)
          .join("\n"),
      });
    } catch (error) {
      if (error instanceof NomadError && error.kind === "conflict") {
        return message(
          `⚠️ Not deployed: ${error.message}. Nothing was submitted; say ${code(`${ctx.prefix}deploy ${args.job}`)} to plan again.`,
        );
      }
      throw error;
    }
    const progress = await ctx.reply(
      message(
        `⏳ **Deploying ${code(args.job)}** (plan ${code(digestOf(plan.facts))}): evaluation ${code(registered.EvalID.slice(0, 8))}…`,
      ),
    );
    ctx.background(`deploying ${args.job}`, async () => {
      const status = await followRollout(ctx, nomad, args.job, registered.EvalID, progress);
      await ctx.reply(
        message(
          status === "successful"
            ? `✅ ${code(args.job)} is deployed and healthy.`
            : `❌ ${code(args.job)}: deployment ${status}.`,
        ),
      );
    });
  },
});

export const deployCommands: CommandSpec[] = [deploy];
