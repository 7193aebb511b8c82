import { code, message, table } from "../src/chat/message.js";
import {
  STOLON_CLUSTER_NAME,
  StolonRefusal,
  type ClusterStatus,
  type MasterRef,
  type Preflight,
  type StolonServices,
} from "../src/backends/stolon/index.js";
import type { CommandContext } from "../src/commands/context.js";
import { defineCommand, type CommandSpec, type Plan } from "../src/commands/declare.js";
import { name } from "../src/commands/types.js";
import { formatDuration } from "../src/config/duration.js";
import { beginAction } from "./actions.js";

const clusterName = name("cluster", STOLON_CLUSTER_NAME, "a Stolon cluster name");

function stolonOf(ctx: CommandContext): StolonServices {
  const stolon = ctx.services.stolon;
  if (!stolon) throw new Error("Stolon is not configured (no stolon section in majordome's config)");
  return stolon;
}

/** The cluster a command acts on: one of the configured ones, never any key a user could name. */
function clusterOf(stolon: StolonServices, requested?: string): string {
  const cluster = requested ?? stolon.defaultCluster;
  if (!stolon.clusters.includes(cluster))
    throw new Error(
      `${code(cluster)} is not a Stolon cluster majordome knows (it knows ${stolon.clusters.map(code).join(", ")})`,
    );
  return cluster;
}

const yes = (ok: boolean) => (ok ? "✅" : "❌");

function formatBytes(n: bigint): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = Number(n);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function listOf(uids: string[]): string {
  return uids.length ? uids.map(code).join(", ") : "none";
}

export function renderClusterStatus(status: ClusterStatus): string {
  const { master } = status;
  const lines = [
    `**Stolon cluster ${code(status.cluster)}**: phase ${status.phase}, ${status.synchronousReplication ? "synchronous" : "asynchronous"} replication.`,
    `Master: keeper ${code(master.keeper)}, database ${code(master.db)}${master.address ? ` at ${code(master.address)}` : ""} ${yes(master.healthy)} ${master.healthy ? "healthy" : "**not healthy**"}`,
  ];
  if (status.standbys.length) {
    lines.push(
      "",
      table(
        ["standby keeper", "database", "healthy", "in sync", "behind master", "could take over"],
        status.standbys.map((s) => [
          code(s.keeper),
          code(s.db),
          yes(s.healthy),
          yes(s.inSync),
          s.lagBytes === undefined ? "—" : formatBytes(s.lagBytes),
          s.eligible ? "✅" : `❌ ${s.notEligible ?? ""}`,
        ]),
      ),
    );
  } else {
    lines.push("", "No standbys.");
  }
  const missing = status.keepers.filter((k) => !k.live).map((k) => k.uid);
  const forced = status.keepers.filter((k) => k.forceFail).map((k) => k.uid);
  lines.push(
    "",
    `Live keepers: ${listOf(status.live.keepers)}${missing.length ? ` (⚠️ no info key: ${listOf(missing)})` : ""}`,
    `Sentinels: ${listOf(status.live.sentinels)}; ${status.sentinelRewriting ? "✅ the cluster data is being rewritten" : "⚠️ **the cluster data is not being rewritten**: no sentinel at work"}`,
    `Proxies: ${listOf(status.live.proxies)}`,
  );
  if (forced.length) lines.push(`Force-failed, awaiting the sentinel: ${listOf(forced)}`);
  return lines.join("\n");
}

const cluster = defineCommand<{ cluster?: string }>({
  name: "db cluster",
  summary: "The PostgreSQL (Stolon) cluster: master, standbys, live keepers, sentinels and proxies",
  flags: { cluster: { summary: "which Stolon cluster (default: the configured one)", type: clusterName } },
  async run(ctx, args) {
    const stolon = stolonOf(ctx);
    const name = clusterOf(stolon, args.cluster);
    try {
      return message(renderClusterStatus(await stolon.backend.status(name)));
    } catch (error) {
      if (error instanceof StolonRefusal) return message(`⚠️ ${code(name)}: ${error.message}`);
      throw error;
    }
  },
});

interface FailoverFacts {
  cluster: string;
  master: MasterRef;
  eligible: string[];
  proxies: number;
}

/** The approval is about these: who is master, who could take over, how many proxies will cut connections. */
function failoverPlan(preflight: Preflight): Plan {
  const status = preflight.status!;
  const facts: FailoverFacts = {
    cluster: preflight.cluster,
    master: { db: status.master.db, keeper: status.master.keeper },
    eligible: preflight.eligible.map((s) => s.keeper).sort(),
    proxies: status.live.proxies.length,
  };
  const standbys = status.standbys.map(
    (s) =>
      `- ${code(s.keeper)} (database ${code(s.db)}): ${s.eligible ? "✅ healthy and in sync" : `❌ ${s.notEligible}`}${s.lagBytes === undefined ? "" : `, ${formatBytes(s.lagBytes)} behind`}`,
  );
  return {
    summary: [
      `**Fail over Stolon cluster ${code(facts.cluster)}**: force-fail master keeper ${code(facts.master.keeper)} (database ${code(facts.master.db)}); the sentinel elects one of the eligible standbys.`,
      "",
      "Standbys:",
      ...standbys,
      "",
      `Sentinel: ${listOf(status.live.sentinels)}, rewriting the cluster data ✅`,
      `Proxies: ${facts.proxies} (${listOf(status.live.proxies)}): they drop their client connections during the switch.`,
    ].join("\n"),
    facts,
  };
}

async function planOrRefusal(ctx: CommandContext, cluster: string): Promise<Plan | string> {
  const preflight = await stolonOf(ctx).backend.preflight(cluster);
  if (preflight.refusal)
    return `⛔ Failover of ${code(cluster)} refused at pre-flight: ${preflight.refusal}. Nothing was written.`;
  return failoverPlan(preflight);
}

const failover = defineCommand<{ cluster?: string }>({
  name: "db failover",
  summary: "Make the Stolon sentinel elect a new PostgreSQL master (what stolonctl failkeeper does)",
  flags: { cluster: { summary: "which Stolon cluster (default: the configured one)", type: clusterName } },
  async plan(ctx, args) {
    // A refusal is the command's answer (the pipeline says it): no approval request is opened for it.
    const plan = await planOrRefusal(ctx, clusterOf(stolonOf(ctx), args.cluster));
    if (typeof plan === "string") throw new StolonRefusal(plan);
    return plan;
  },
  async run(ctx, args, approved) {
    const stolon = stolonOf(ctx);
    const name = clusterOf(stolon, args.cluster);
    const plan = approved ?? (await planOrRefusal(ctx, name));
    if (typeof plan === "string") return message(plan);
    if (!approved) await ctx.reply(message(plan.summary));
    const facts = plan.facts as FailoverFacts;
    const actionId = await beginAction(ctx, "db failover", { cluster: name, ...facts.master });
    if (!actionId) return message("This request was already handled.");
    const { journal } = ctx.services;
    const started = ctx.services.clock.now();
    const progress = await ctx.reply(
      message(`⏳ **Failover of ${code(name)}**: force-failing keeper ${code(facts.master.keeper)}…`),
    );
    let attempts: number;
    try {
      ({ attempts } = await journal.step(actionId, "forcefail", async () => {
        const done = await stolon.backend.failkeeper(name, facts.master.keeper, { onlyWhileMaster: true });
        return { attempts: done.attempts, modifyIndex: String(done.modifyIndex) };
      }));
    } catch (error) {
      await journal.finish(actionId, "failed", (error as Error).message);
      await ctx.edit(progress, message(`❌ **Failover of ${code(name)}**: ${(error as Error).message}`));
      return;
    }
    const written = `forceFail set on keeper ${code(facts.master.keeper)}${attempts > 1 ? ` (after ${attempts - 1} check-and-set conflict(s) with the sentinel)` : ""}`;
    await ctx.edit(
      progress,
      message(`⏳ **Failover of ${code(name)}**: ${written}; waiting for the sentinel…`),
    );
    ctx.background(`following the failover of ${name}`, async () => {
      const change = await stolon.backend.waitForNewMaster(
        name,
        facts.master,
        stolon.failoverTimeoutMs,
        (seen) => ctx.edit(progress, message(`⏳ **Failover of ${code(name)}**: ${written}; ${seen}`)),
      );
      const took = formatDuration(ctx.services.clock.now() - started);
      if (change.outcome === "elected") {
        await journal.finish(actionId, "succeeded");
        await ctx.edit(
          progress,
          message(
            `✅ **Failover of ${code(name)}**: master ${code(change.old.keeper)} → ${code(change.new.keeper)} (database ${code(change.old.db)} → ${code(change.new.db)}) in ${took}.`,
          ),
        );
        return;
      }
      const why = `no new master within ${formatDuration(stolon.failoverTimeoutMs)}; last seen: ${change.saw}`;
      await journal.finish(actionId, "failed", why);
      await ctx.edit(
        progress,
        message(
          `⏱️ **Failover of ${code(name)}**: ${why}. ${code(`${ctx.prefix}db cluster`)} shows where it is.`,
        ),
      );
    });
  },
});

export const stolonCommands: CommandSpec[] = [cluster, failover];
