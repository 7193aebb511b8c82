import { code, message, table, type Message } from "../src/chat/message.js";
import type { NomadClient } from "../src/backends/nomad/index.js";
import {
  allocDemand,
  checkRoom,
  freeOn,
  holdsResources,
  takesAllocations,
  type Candidate,
  type Demand,
  type Mover,
  type RoomCheck,
} from "../src/backends/nomad/nodes.js";
import type { FullAllocation, NodeStub, NomadNode } from "../src/backends/nomad/types.js";
import type { CommandContext } from "../src/commands/context.js";
import { defineCommand, type CommandSpec, type Plan } from "../src/commands/declare.js";
import { durationArg, name, oneOf } from "../src/commands/types.js";
import { formatDuration } from "../src/config/duration.js";
import { beginAction } from "./actions.js";
import { followDrain, replaceAllocation } from "./node-follow.js";
import { isRunning, jobName, nomadOf, shortId } from "./nomad-common.js";

export const nodeRef = name(
  "node",
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
  "a node name or the start of its ID: letters, digits, ., - and _",
);
const allocRef = name(
  "allocation",
  /^[0-9a-f]{4}[0-9a-f-]{0,32}$/,
  "an allocation ID or its first characters (at least 4 hex digits)",
);

const DEFAULT_DEADLINE_MS = 60 * 60_000;
const MAX_DEADLINE_MS = 7 * 24 * 60 * 60_000;

/** A request refused before anything was changed, with the reason in words for the room. */
class Refusal extends Error {}

async function resolveNode(ctx: CommandContext, client: NomadClient, ref: string): Promise<NodeStub> {
  const found = await client.findNode(ref);
  if (found.kind === "found") return found.node;
  if (found.kind === "ambiguous") {
    const which = found.matches.map((n) => `${code(n.Name)} (${code(shortId(n.ID))}, ${n.Status})`);
    throw new Refusal(`${code(ref)} matches several nodes: ${which.join(", ")}. Give more of the ID.`);
  }
  const hint = found.suggestions.length
    ? ` Did you mean ${found.suggestions.map((s) => code(s)).join(" or ")}?`
    : "";
  throw new Refusal(`No node ${code(ref)}.${hint} ${code(`${ctx.prefix}nodes`)} lists them.`);
}

/** Answers a refusal as a message; anything else is the pipeline's to report. */
async function refusable(work: () => Promise<Message | void>): Promise<Message | void> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof Refusal) return message(`⚠️ ${error.message}`);
    throw error;
  }
}

const nodes = defineCommand({
  name: "nodes",
  summary: "Cluster nodes: status, eligibility, drain, allocations",
  async run(ctx) {
    const { client } = nomadOf(ctx);
    const list = await client.nodes();
    const counts = await Promise.all(
      list.map(async (n) => (await client.nodeAllocations(n.ID)).filter(isRunning).length),
    );
    const rows = list
      .map((n, i) => [
        (n.Status === "ready" ? "🟢 " : "🔴 ") + code(n.Name),
        n.Datacenter,
        n.Status,
        n.SchedulingEligibility,
        n.Drain ? "draining" : "",
        String(counts[i]),
      ])
      .sort((a, b) => a[0]!.localeCompare(b[0]!));
    return message(
      rows.length
        ? table(["node", "dc", "status", "eligibility", "drain", "running allocs"], rows)
        : "No nodes.",
    );
  },
});

type DrainArgs = {
  node: string;
  deadline?: number;
  force?: boolean;
  "ignore-system"?: boolean;
};

/** What an approver approves: if any of it differs when the drain is about to start, it does not start. */
interface DrainFacts {
  node: string;
  name: string;
  deadlineMs: number;
  ignoreSystem: boolean;
  force: boolean;
  moving: string[];
  stopping: string[];
  unplaced: string[];
}

const jobType = (a: FullAllocation): string => a.Job?.Type ?? a.JobType ?? "service";
const isSystem = (a: FullAllocation): boolean => ["system", "sysbatch"].includes(jobType(a));

/**
 * The pre-flight of a drain: the allocations that will move, and whether the other nodes that take
 * allocations have the CPU and memory for them. Refuses a node already draining, and a drain that does
 * not fit unless forced.
 */
async function drainPlan(ctx: CommandContext, args: DrainArgs): Promise<Plan> {
  const { client } = nomadOf(ctx);
  const stub = await resolveNode(ctx, client, args.node);
  const [{ value: node }, onNode, nodes] = await Promise.all([
    client.node(stub.ID),
    client.nodeAllocations(stub.ID),
    client.nodes({ resources: true }),
  ]);
  if (node.DrainStrategy) {
    const deadline = node.DrainStrategy.ForceDeadline;
    throw new Refusal(
      `${code(node.Name)} is already draining (since ${node.DrainStrategy.StartedAt ?? "?"}` +
        `${deadline && !deadline.startsWith("0001") ? `, deadline ${deadline}` : ""}). ` +
        `${code(`${ctx.prefix}undrain ${node.Name}`)} cancels it.`,
    );
  }
  const deadlineMs = args.deadline ?? DEFAULT_DEADLINE_MS;
  const ignoreSystem = args["ignore-system"] ?? false;
  const force = args.force ?? false;
  const live = onNode.filter(holdsResources).sort((a, b) => a.Name.localeCompare(b.Name));
  const moving = live.filter((a) => !isSystem(a));
  const stopping = ignoreSystem ? [] : live.filter(isSystem);
  const others = nodes.filter((n) => n.ID !== node.ID && takesAllocations(n));
  const candidates: Candidate[] = await Promise.all(
    others.map(async (n) => ({
      name: n.Name,
      datacenter: n.Datacenter,
      free: freeOn(n, await client.nodeAllocations(n.ID)),
    })),
  );
  const room = checkRoom(moving.map(moverOf), candidates);
  if (!room.fits && !force) {
    throw new Refusal(
      `Not drained: ${noRoom(room, candidates)} Free some room first, or add ${code("--force")} to drain ` +
        "anyway (what does not fit is stopped and waits in Nomad's queue).",
    );
  }
  const facts: DrainFacts = {
    node: node.ID,
    name: node.Name,
    deadlineMs,
    ignoreSystem,
    force,
    moving: moving.map((a) => a.ID),
    stopping: stopping.map((a) => a.ID),
    unplaced: room.unplaced.map((m) => m.id).sort(),
  };
  return { summary: drainSummary(node, facts, moving, stopping, room, candidates), facts };
}

function moverOf(alloc: FullAllocation): Mover {
  return {
    id: alloc.ID,
    job: alloc.JobID,
    group: alloc.TaskGroup,
    demand: allocDemand(alloc),
    datacenters: alloc.Job?.Datacenters ?? [],
  };
}

const size = (d: Demand): string => `${d.cpu} MHz / ${d.memoryMb} MB`;

function freeText(candidates: Candidate[]): string {
  if (candidates.length === 0) return "no other node takes allocations";
  return `free: ${candidates.map((c) => `${code(c.name)} ${size(c.free)}`).join(", ")}`;
}

function noRoom(room: RoomCheck, candidates: Candidate[]): string {
  const missing = room.unplaced.map(
    (m) => `${code(m.job)} › ${code(m.group)} (${code(shortId(m.id))}, ${size(m.demand)})`,
  );
  return `the other nodes have no room for ${missing.join(", ")} (${freeText(candidates)}).`;
}

function drainSummary(
  node: NomadNode,
  facts: DrainFacts,
  moving: FullAllocation[],
  stopping: FullAllocation[],
  room: RoomCheck,
  candidates: Candidate[],
): string {
  const lines = [
    `**Drain ${code(node.Name)}** (${code(shortId(node.ID))}, ${node.Datacenter}, ${node.Status}): deadline ` +
      `${formatDuration(facts.deadlineMs)}, after which Nomad stops whatever is left; ` +
      (facts.ignoreSystem ? "system jobs keep running there." : "system jobs are stopped at the end."),
  ];
  if (node.Status !== "ready") lines.push("", `⚠️ ${code(node.Name)} is ${node.Status}.`);
  if (moving.length === 0) {
    lines.push("", "Nothing runs there to move: the node only stops taking new allocations.");
  } else {
    lines.push(
      "",
      `${moving.length} allocation(s) will move, no more of a group at a time than its migrate max_parallel:`,
      "",
      table(
        ["allocation", "job › group", "CPU / memory", "room on"],
        moving.map((a) => [
          code(shortId(a.ID)),
          `${code(a.JobID)} › ${code(a.TaskGroup)}${jobType(a) === "batch" ? " (batch: left to finish)" : ""}`,
          size(allocDemand(a)),
          room.placements[a.ID] ? code(room.placements[a.ID]!) : "❌ none",
        ]),
      ),
      "",
      room.fits
        ? `Room elsewhere: ✅ everything fits (${freeText(candidates)}; CPU and memory only, constraints are Nomad's to check).`
        : `Room elsewhere: ⚠️ ${noRoom(room, candidates)} ${code("--force")}: those are stopped and wait in Nomad's queue.`,
    );
  }
  if (stopping.length)
    lines.push(
      "",
      `System job allocations stopped at the end: ${stopping.map((a) => `${code(a.JobID)} (${code(shortId(a.ID))})`).join(", ")}.`,
    );
  return lines.join("\n");
}

const drain = defineCommand<DrainArgs>({
  name: "drain",
  summary:
    "Move every allocation off a node (pre-flight: what moves and whether the other nodes have room), following it to the end",
  args: [{ name: "node", type: nodeRef }],
  flags: {
    deadline: {
      summary: "after this long Nomad stops whatever is left (default 1h)",
      type: durationArg("deadline", MAX_DEADLINE_MS),
    },
    force: {
      summary: "drain even when the other nodes have no room for everything",
      policy: "drain --force",
    },
    "ignore-system": { summary: "leave system jobs running on the node" },
  },
  plan: (ctx, args) => drainPlan(ctx, args),
  run: (ctx, args, approved) =>
    refusable(async () => {
      const plan = approved ?? (await drainPlan(ctx, args));
      if (!approved) await ctx.reply(message(plan.summary));
      const facts = plan.facts as DrainFacts;
      const { client } = nomadOf(ctx);
      const { journal } = ctx.services;
      const actionId = await beginAction(ctx, "drain", {
        node: facts.node,
        name: facts.name,
        deadlineMs: facts.deadlineMs,
        ignoreSystem: facts.ignoreSystem,
        force: facts.force,
      });
      if (!actionId) return message("This drain was already started; it is not started again.");
      await journal.step(actionId, "drain set", async () => {
        const set = await client.drainNode(
          facts.node,
          { deadlineMs: facts.deadlineMs, ignoreSystemJobs: facts.ignoreSystem },
          { message: `majordome: drain asked by ${ctx.identity.sender}` },
        );
        return { nodeModifyIndex: set.NodeModifyIndex };
      });
      const progress = await ctx.reply(
        message(`🚚 **${code(facts.name)}: draining** — ${facts.moving.length} allocation(s) to move…`),
      );
      ctx.background(`draining ${facts.name}`, async () => {
        try {
          const { end, text } = await followDrain(
            ctx,
            nomadOf(ctx),
            {
              nodeId: facts.node,
              name: facts.name,
              deadlineMs: facts.deadlineMs,
              tracked: [...facts.moving, ...facts.stopping],
            },
            progress,
          );
          await journal.finish(
            actionId,
            end === "complete" || end === "deadline" ? "succeeded" : "failed",
            end,
          );
          await ctx.reply(message(text));
        } catch (error) {
          await journal.finish(actionId, "failed", (error as Error).message);
          throw error;
        }
      });
    }),
});

const undrain = defineCommand<{ node: string }>({
  name: "undrain",
  summary: "Cancel a node's drain and let it take allocations again (what moved stays where it is)",
  args: [{ name: "node", type: nodeRef }],
  run: (ctx, args) =>
    refusable(async () => {
      const { client } = nomadOf(ctx);
      const node = await resolveNode(ctx, client, args.node);
      if (!node.Drain && node.SchedulingEligibility === "eligible")
        return message(`${code(node.Name)} is not draining and already eligible; nothing changed.`);
      await client.cancelDrain(node.ID, true, {
        message: `majordome: undrain asked by ${ctx.identity.sender}`,
      });
      return message(
        node.Drain
          ? `⏹️ The drain of ${code(node.Name)} is cancelled and the node is eligible again; allocations that already moved stay where they are.`
          : `✅ ${code(node.Name)} was not draining; it is eligible again.`,
      );
    }),
});

const eligible = defineCommand<{ node: string; state: "on" | "off" }>({
  name: "eligible",
  summary: "Let a node take new allocations (on) or not (off); what runs there keeps running",
  args: [
    { name: "node", type: nodeRef },
    { name: "state", type: oneOf("on|off", ["on", "off"] as const) },
  ],
  run: (ctx, args) =>
    refusable(async () => {
      const { client } = nomadOf(ctx);
      const node = await resolveNode(ctx, client, args.node);
      const wanted = args.state === "on";
      if (wanted && node.Drain)
        return message(
          `⚠️ ${code(node.Name)} is draining, and Nomad keeps a draining node ineligible. ${code(`${ctx.prefix}undrain ${node.Name}`)} cancels the drain and makes it eligible.`,
        );
      if ((node.SchedulingEligibility === "eligible") === wanted)
        return message(
          `${code(node.Name)} is already ${wanted ? "eligible" : "ineligible"}; nothing changed.`,
        );
      await client.setEligibility(node.ID, wanted);
      if (wanted) return message(`✅ ${code(node.Name)} is eligible: Nomad may place new allocations there.`);
      const running = (await client.nodeAllocations(node.ID)).filter(isRunning).length;
      return message(
        `🚫 ${code(node.Name)} is ineligible: Nomad places nothing new there. Its ${running} running allocation(s) stay; ` +
          `${code(`${ctx.prefix}drain ${node.Name}`)} moves them, ${code(`${ctx.prefix}reschedule <job>`)} moves one job's.`,
      );
    }),
});

const reschedule = defineCommand<{ job: string; alloc?: string }>({
  name: "reschedule",
  summary:
    "Stop a job's allocations one at a time (or the one named) so Nomad places them again, each replacement healthy before the next",
  args: [
    { name: "job", type: jobName },
    { name: "alloc", type: allocRef, optional: true },
  ],
  run: (ctx, args) =>
    refusable(async () => {
      const nomad = nomadOf(ctx);
      const { value: allocations } = await nomad.client.allocations(args.job);
      const running = allocations.filter(isRunning).sort((a, b) => a.Name.localeCompare(b.Name));
      const selected = args.alloc ? running.filter((a) => a.ID.startsWith(args.alloc!)) : running;
      if (args.alloc && selected.length > 1)
        throw new Refusal(
          `${code(args.alloc)} matches ${selected.length} allocations of ${code(args.job)}; give more of the ID.`,
        );
      if (selected.length === 0) {
        const other = args.alloc && allocations.find((a) => a.ID.startsWith(args.alloc!));
        throw new Refusal(
          other
            ? `Allocation ${code(shortId(other.ID))} of ${code(args.job)} is not running (${other.ClientStatus}); nothing to reschedule.`
            : `No running allocation of ${code(args.job)}${args.alloc ? ` starts with ${code(args.alloc)}` : ""}.`,
        );
      }
      const where = (a: { NodeName?: string; NodeID: string }) => code(a.NodeName ?? shortId(a.NodeID));
      const total = selected.length;
      const progress = await ctx.reply(
        message(`🔀 Rescheduling ${total} allocation(s) of ${code(args.job)}, one at a time…`),
      );
      ctx.background(`rescheduling ${args.job}`, async () => {
        const moved: string[] = [];
        for (const [i, alloc] of selected.entries()) {
          await ctx.edit(
            progress,
            message(
              `🔀 Rescheduling ${code(args.job)}: ${i}/${total} done; replacing ${code(shortId(alloc.ID))} (on ${where(alloc)})…`,
            ),
          );
          const result = await replaceAllocation(ctx, nomad, alloc);
          if (!result.ok) {
            const text = `❌ Rescheduling ${code(args.job)} stopped after ${i}/${total}: ${result.reason}. The remaining ${total - i - 1} allocation(s) were not touched.`;
            await ctx.edit(progress, message(text));
            await ctx.reply(message(text));
            return;
          }
          const next = result.replacement;
          const same = next.NodeID === alloc.NodeID ? " (same node: it had the most room)" : "";
          moved.push(
            `- ${code(shortId(alloc.ID))} on ${where(alloc)} → ${code(shortId(next.ID))} on ${where(next)}${same}`,
          );
        }
        const text = `✅ Rescheduled ${total} allocation(s) of ${code(args.job)} one at a time; each replacement is running and healthy:\n${moved.join("\n")}`;
        await ctx.edit(progress, message(text));
        await ctx.reply(message(`✅ ${code(args.job)}: ${total} allocation(s) rescheduled.`));
      });
    }),
});

export const nodeCommands: CommandSpec[] = [nodes, drain, undrain, eligible, reschedule];
