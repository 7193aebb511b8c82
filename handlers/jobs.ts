import { code, message, table } from "../src/chat/message.js";
import { describeTaskEvent, renderPlan } from "../src/backends/nomad/render.js";
import type { Allocation, Job, JobListStub } from "../src/backends/nomad/types.js";
import type { CommandContext } from "../src/commands/context.js";
import { defineCommand, type CommandSpec } from "../src/commands/declare.js";
import { integer } from "../src/commands/types.js";
import { redactSecrets, taskSecrets } from "../src/backends/nomad/task-secrets.js";
import { followRollout } from "./deployment-follow.js";
import { groupName, isRunning, jobName, nomadOf, pollUntil, shortId } from "./nomad-common.js";

const status = defineCommand<{ job?: string }>({
  name: "status",
  summary:
    "Jobs at a glance, failing ones first; or one job: groups, allocations per node, deployment, failures",
  args: [{ name: "job", type: jobName, optional: true }],
  async run(ctx, { job }) {
    return job ? jobStatus(ctx, job) : message(jobsTable(await nomadOf(ctx).client.jobs()));
  },
});

function jobsTable(jobs: JobListStub[]): string {
  if (jobs.length === 0) return "No jobs.";
  const counts = (j: JobListStub) => {
    const groups = Object.values(j.JobSummary?.Summary ?? {});
    const sum = (k: "Running" | "Starting" | "Queued" | "Failed" | "Lost") =>
      groups.reduce((n, g) => n + (g[k] ?? 0), 0);
    return {
      running: sum("Running"),
      pending: sum("Starting") + sum("Queued"),
      failed: sum("Failed") + sum("Lost"),
    };
  };
  const rows = jobs
    .map((j) => ({ j, c: counts(j) }))
    .sort((a, b) => b.c.failed - a.c.failed || a.j.ID.localeCompare(b.j.ID))
    .map(({ j, c }) => [
      (c.failed ? "🔴 " : j.Status === "running" ? "🟢 " : "⚪ ") + code(j.ID),
      j.Type,
      j.Status + (j.Stop ? " (stopped)" : ""),
      String(j.Version ?? "—"),
      `${c.running} running${c.pending ? `, ${c.pending} starting` : ""}`,
      c.failed ? `${c.failed} failed/lost` : "",
    ]);
  return table(["job", "type", "status", "version", "allocations", "failures"], rows);
}

async function jobStatus(ctx: CommandContext, id: string) {
  const { client } = nomadOf(ctx);
  const [job, { value: allocations }, deployment] = await Promise.all([
    client.job(id),
    client.allocations(id),
    client.latestDeployment(id),
  ]);
  const lines = [
    `**${code(job.ID)}** ${job.Type ?? ""} — ${job.Status ?? "?"}, version ${job.Version ?? "?"}${job.Stable ? " (stable)" : ""}`,
  ];
  const groups = (job.TaskGroups ?? []).map((g) => `${code(g.Name)} × ${g.Count ?? 1}`);
  lines.push(`Groups: ${groups.join(", ") || "none"}`);
  const current = allocations.filter((a) => a.DesiredStatus === "run");
  if (current.length) {
    lines.push(
      "",
      table(
        ["allocation", "group", "node", "status", "healthy", "version"],
        current.map((a) => [
          code(shortId(a.ID)),
          a.TaskGroup,
          a.NodeName ?? shortId(a.NodeID),
          a.ClientStatus,
          health(a),
          String(a.JobVersion ?? ""),
        ]),
      ),
    );
  }
  if (deployment)
    lines.push(
      "",
      `Latest deployment (version ${deployment.JobVersion}): ${deployment.Status} — ${deployment.StatusDescription}`,
    );
  const failures = allocations
    .filter((a) => a.ClientStatus === "failed" || a.ClientStatus === "lost")
    .sort((a, b) => (b.ModifyTime ?? 0) - (a.ModifyTime ?? 0))
    .slice(0, 5);
  if (failures.length) {
    lines.push("", "Recent failures:");
    for (const a of failures) {
      const last = Object.values(a.TaskStates ?? {})
        .flatMap((t) => t.Events ?? [])
        .sort((x, y) => x.Time - y.Time)
        .at(-1);
      lines.push(
        `- ${code(shortId(a.ID))} (${a.TaskGroup}) ${a.ClientStatus}${last ? `: ${describeTaskEvent(last)}` : ""}`,
      );
    }
  }
  return message(lines.join("\n"));
}

function health(alloc: Allocation): string {
  const healthy = alloc.DeploymentStatus?.Healthy;
  return healthy === true ? "✅" : healthy === false ? "❌" : "—";
}

const restart = defineCommand<{ job: string; target?: string }>({
  name: "restart",
  summary: "Restart a job's allocations one at a time (a group or a task only, if named)",
  args: [
    { name: "job", type: jobName },
    { name: "target", type: groupName, optional: true },
  ],
  async run(ctx, { job, target }) {
    const { client } = nomadOf(ctx);
    const { value: allocations } = await client.allocations(job);
    const running = allocations.filter(isRunning);
    const byGroup = running.filter((a) => !target || a.TaskGroup === target);
    const selected = byGroup.length
      ? byGroup
      : running.filter((a) => target && Object.keys(a.TaskStates ?? {}).includes(target));
    const task = byGroup.length ? undefined : target;
    if (selected.length === 0)
      return message(`No running allocation of ${code(job)}${target ? ` matches ${code(target)}` : ""}.`);
    const progress = await ctx.reply(
      message(`🔁 Restarting ${selected.length} allocation(s) of ${code(job)}, one at a time…`),
    );
    ctx.background(`restarting ${job}`, async () => {
      for (const [i, alloc] of selected.entries()) {
        const before = restarts(alloc, task);
        await client.restartAllocation(alloc.ID, task);
        const back = await pollUntil(
          ctx,
          () => client.allocation(alloc.ID),
          (a) => isRunning(a) && restarts(a, task) > before && allTasksRunning(a, task),
          { everyMs: 1000, timeoutMs: 5 * 60_000 },
        );
        if (!back) {
          await ctx.edit(
            progress,
            message(
              `❌ ${code(shortId(alloc.ID))} did not come back within 5 min; the other allocations were not restarted.`,
            ),
          );
          return;
        }
        await ctx.edit(progress, message(`🔁 Restarting ${code(job)}: ${i + 1}/${selected.length} done`));
      }
      await ctx.edit(
        progress,
        message(`✅ Restarted ${selected.length} allocation(s) of ${code(job)}, one at a time; all running.`),
      );
    });
  },
});

function restarts(alloc: Allocation, task?: string): number {
  return Object.entries(alloc.TaskStates ?? {})
    .filter(([name]) => !task || name === task)
    .reduce(
      (n, [, state]) =>
        n + (state.Events ?? []).filter((e) => e.Type === "Restart Signaled").length + state.Restarts,
      0,
    );
}

function allTasksRunning(alloc: Allocation, task?: string): boolean {
  return Object.entries(alloc.TaskStates ?? {}).every(
    ([name, state]) => (task && name !== task) || state.State === "running",
  );
}

const scale = defineCommand<{ job: string; group: string; count: number }>({
  name: "scale",
  summary: "Set how many allocations a group runs",
  args: [
    { name: "job", type: jobName },
    { name: "group", type: groupName },
    { name: "count", type: integer("count", 0, 100) },
  ],
  async run(ctx, { job, group, count }) {
    const nomad = nomadOf(ctx);
    const [spec, deployment] = await Promise.all([nomad.client.job(job), nomad.client.latestDeployment(job)]);
    const current = spec.TaskGroups?.find((g) => g.Name === group);
    if (!current)
      return message(
        `${code(job)} has no group ${code(group)} (it has ${(spec.TaskGroups ?? []).map((g) => code(g.Name)).join(", ")}).`,
      );
    if (deployment && (deployment.Status === "running" || deployment.Status === "paused")) {
      return message(
        `⚠️ Not scaled: a deployment of ${code(job)} is ${deployment.Status} (version ${deployment.JobVersion}); Nomad refuses to scale until it ends.`,
      );
    }
    if (current.Count === count) return message(`${code(job)} › ${code(group)} already runs ${count}.`);
    const registered = await nomad.client.scale(job, group, count, `majordome: ${ctx.identity.sender}`);
    const progress = await ctx.reply(
      message(`↕️ Scaling ${code(job)} › ${code(group)} from ${current.Count ?? 1} to ${count}…`),
    );
    ctx.background(`scaling ${job}`, async () => {
      const result = await followRollout(ctx, nomad, job, registered.EvalID, progress);
      await ctx.reply(
        message(
          result === "successful"
            ? `✅ ${code(job)} › ${code(group)} runs ${count}.`
            : `❌ Scaling ${code(job)}: ${result}.`,
        ),
      );
    });
  },
});

const rollback = defineCommand<{ job: string; version?: number }>({
  name: "rollback",
  summary: "Go back to an earlier version of a job (the last stable one by default), showing the diff first",
  args: [
    { name: "job", type: jobName },
    { name: "version", type: integer("version", 0, 1_000_000), optional: true },
  ],
  async plan(ctx, { job, version }) {
    const { client } = nomadOf(ctx);
    const { Versions: versions } = await client.versions(job);
    const current = versions[0];
    if (!current) throw new Error(`${code(job)} has no versions`);
    const target =
      version === undefined
        ? versions.find((v) => v.Stable && v.Version !== current.Version)
        : versions.find((v) => v.Version === version);
    if (!target) {
      throw new Error(
        version === undefined
          ? `${code(job)} has no earlier stable version`
          : `${code(job)} has no version ${version}`,
      );
    }
    if (target.Version === current.Version)
      throw new Error(`${code(job)} already runs version ${target.Version}`);
    const diff = await client.plan(asSubmittable(target, current));
    return {
      summary: `Roll ${code(job)} back from version ${current.Version} to ${target.Version}.\n\n${renderPlan(job, diff)}`,
      facts: { job, from: current.Version, to: target.Version },
      guard: { from: current.Version!, to: target.Version! },
    };
  },
  async run(ctx, args, approved) {
    const nomad = nomadOf(ctx);
    const plan = approved ?? (await rollback.plan!(ctx, args));
    if (!approved) await ctx.reply(message(plan.summary));
    const { from, to } = plan.guard as { from: number; to: number };
    const registered = await nomad.client.revert(args.job, to, from);
    const progress = await ctx.reply(message(`⏪ Rolling ${code(args.job)} back to version ${to}…`));
    ctx.background(`rolling back ${args.job}`, async () => {
      const result = await followRollout(ctx, nomad, args.job, registered.EvalID, progress);
      await ctx.reply(
        message(
          result === "successful"
            ? `✅ ${code(args.job)} is back at version ${to}'s spec.`
            : `❌ Rollback of ${code(args.job)}: ${result}.`,
        ),
      );
    });
  },
});

/** An old version, as something to plan: the current job's modify index, the old spec. */
function asSubmittable(target: Job, current: Job): Job {
  return { ...target, Version: current.Version, JobModifyIndex: current.JobModifyIndex };
}

const stop = defineCommand<{ job: string; purge?: boolean }>({
  name: "stop",
  summary: "Stop a job (and with --purge, forget it)",
  args: [{ name: "job", type: jobName }],
  flags: { purge: { summary: "also remove the job from Nomad's state", policy: "stop --purge" } },
  async plan(ctx, { job, purge }) {
    const { client } = nomadOf(ctx);
    const [spec, { value: allocations }] = await Promise.all([client.job(job), client.allocations(job)]);
    const running = allocations.filter(isRunning);
    return {
      summary:
        `Stop ${code(job)} (version ${spec.Version}): ${running.length} running allocation(s) on ` +
        `${[...new Set(running.map((a) => a.NodeName ?? shortId(a.NodeID)))].join(", ") || "no node"} will be stopped` +
        (purge ? ", and the job purged from Nomad (its history is lost)." : "."),
      facts: { job, version: spec.Version, running: running.map((a) => a.ID).sort(), purge: purge ?? false },
    };
  },
  async run(ctx, { job, purge }) {
    const { client } = nomadOf(ctx);
    const result = await client.stop(job, purge ?? false);
    return message(
      `⏹️ ${code(job)} stopped${purge ? " and purged" : ""} (evaluation ${code(shortId(result.EvalID))}).`,
    );
  },
});

const promote = defineCommand<{ job: string }>({
  name: "promote",
  summary: "Promote the canaries of a job's running deployment",
  args: [{ name: "job", type: jobName }],
  async run(ctx, { job }) {
    const { client } = nomadOf(ctx);
    const deployment = await client.latestDeployment(job);
    if (!deployment || deployment.Status !== "running")
      return message(`${code(job)} has no running deployment to promote.`);
    await client.promote(deployment.ID);
    return message(`⏫ Promoted the canaries of ${code(job)} version ${deployment.JobVersion}.`);
  },
});

const fail = defineCommand<{ job: string }>({
  name: "fail",
  summary: "Mark a job's running deployment as failed (Nomad rolls back if the job says so)",
  args: [{ name: "job", type: jobName }],
  async run(ctx, { job }) {
    const { client } = nomadOf(ctx);
    const deployment = await client.latestDeployment(job);
    if (!deployment || deployment.Status !== "running")
      return message(`${code(job)} has no running deployment.`);
    await client.failDeployment(deployment.ID);
    return message(`🛑 The deployment of ${code(job)} version ${deployment.JobVersion} is marked failed.`);
  },
});

const logs = defineCommand<{ job: string; task?: string; stderr?: boolean; lines?: number }>({
  name: "logs",
  summary: "The last lines a job's task wrote (its newest allocation)",
  args: [
    { name: "job", type: jobName },
    { name: "task", type: groupName, optional: true },
  ],
  flags: {
    stderr: { summary: "standard error instead of standard output" },
    lines: { summary: "how many lines (default 20, at most 200)", type: integer("lines", 1, 200) },
  },
  async run(ctx, { job, task, stderr, lines }) {
    const { client } = nomadOf(ctx);
    const { value: allocations } = await client.allocations(job);
    const newest = allocations
      .filter((a) => !task || Object.keys(a.TaskStates ?? {}).includes(task))
      .sort(
        (a, b) => Number(isRunning(b)) - Number(isRunning(a)) || (b.CreateTime ?? 0) - (a.CreateTime ?? 0),
      )[0];
    if (!newest) return message(`No allocation of ${code(job)}${task ? ` has a task ${code(task)}` : ""}.`);
    const taskName = task ?? Object.keys(newest.TaskStates ?? {})[0];
    if (!taskName) return message(`Allocation ${code(shortId(newest.ID))} has no task yet.`);
    const secrets = await secretsOfTask(ctx, newest.ID, taskName);
    const text = await client.logs(newest.ID, taskName, stderr ? "stderr" : "stdout");
    const tail = redactSecrets(text, secrets)
      .replace(/\s+$/, "")
      .split("\n")
      .slice(-(lines ?? 20))
      .join("\n");
    const where = `${code(job)} › ${code(taskName)} (${code(shortId(newest.ID))}, ${stderr ? "stderr" : "stdout"})`;
    return message(
      tail ? `${where}:\n\n\`\`\`\n${tail.replace(/```/g, "ˋˋˋ")}\n\`\`\`` : `${where}: nothing written.`,
    );
  },
});

/**
 * The secret values a task's logs may print (see task-secrets.ts). When the Consul keys its templates
 * read cannot be read, its logs are not shown at all: they could print them.
 */
async function secretsOfTask(ctx: CommandContext, allocId: string, task: string): Promise<string[]> {
  const consul = ctx.services.provisioning?.secrets;
  const prefix = consul?.layout.prefix ?? "secrets/";
  const { values, consulKeys } = taskSecrets(await nomadOf(ctx).client.allocation(allocId), task, prefix);
  if (consulKeys.length === 0) return values;
  const unreadable = (why: string) =>
    new Error(
      `the task reads secrets from Consul (${consulKeys.map(code).join(", ")}) and ${why}; ` +
        "its logs could print them, so they are not shown",
    );
  if (!consul) throw unreadable("majordome has no consul section to read them with");
  const read = await Promise.all(consulKeys.map((key) => consul.read(key))).catch((error: unknown) => {
    throw unreadable(
      `majordome could not read them (${error instanceof Error ? error.message : String(error)})`,
    );
  });
  return [...values, ...read.filter((v): v is string => v !== undefined)];
}

export const jobCommands: CommandSpec[] = [status, restart, scale, rollback, stop, promote, fail, logs];
