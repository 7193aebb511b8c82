import { serverError } from "./errors.js";
import { blocking, GET, missing, WRITE, type Context, type Reply, type Route } from "./http.js";
import { nodeStub } from "./nodes.js";
import { Fields } from "./read.js";
import { byId, parseBool } from "./serialize.js";
import type { Simulation } from "./sim.js";
import type { Node } from "./types.js";

/** /v1/nodes and /v1/node/:id/... (command/agent/node_endpoint.go). */
export function nodeRoutes(sim: Simulation): Route[] {
  const store = sim.store;

  const mustFind = (ctx: Context): Node => {
    const node = store.nodes.get(ctx.params.id ?? "");
    if (node === undefined) throw serverError("node not found");
    return node;
  };

  const list = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const prefix = ctx.query.get("prefix") ?? "";
      const options = {
        os: parseBool("os", ctx.query.get("os")),
        resources: parseBool("resources", ctx.query.get("resources")),
      };
      const nodes = [...store.nodes.values()]
        .filter((n) => n.ID.startsWith(prefix))
        .sort(byId)
        .map((n) => nodeStub(n, options));
      return { body: nodes, index: store.tableIndex("nodes") };
    });

  const read = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const node = store.nodes.get(ctx.params.id ?? "");
      if (node === undefined) return missing("node not found", store.tableIndex("nodes"));
      return { body: node, index: node.ModifyIndex };
    });

  const allocations = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => ({
      body: [...store.allocs.values()].filter((a) => a.NodeID === ctx.params.id).sort(byId),
      index: store.tableIndex("allocs"),
    }));

  const drain = (ctx: Context): Reply => {
    const node = mustFind(ctx);
    const body = Fields.of(ctx.body(), "NodeUpdateDrainRequest");
    const spec = body.child("DrainSpec");
    const reply = sim.nodeService.drain(
      node,
      spec === undefined
        ? undefined
        : {
            deadlineNs: spec.int("Deadline"),
            ignoreSystemJobs: spec.bool("IgnoreSystemJobs"),
            markEligible: body.bool("MarkEligible"),
            meta: body.stringMap("Meta"),
          },
    );
    if (spec === undefined && body.bool("MarkEligible")) sim.nodeService.setEligibility(node, "eligible");
    return { body: reply, index: reply.Index };
  };

  const eligibility = (ctx: Context): Reply => {
    const node = mustFind(ctx);
    const body = Fields.of(ctx.body(), "NodeUpdateEligibilityRequest");
    const reply = sim.nodeService.setEligibility(node, body.str("Eligibility"));
    return { body: reply, index: reply.Index };
  };

  return [
    { methods: GET, path: "/v1/nodes", handler: list },
    { methods: GET, path: "/v1/node/:id", handler: read },
    { methods: GET, path: "/v1/node/:id/allocations", handler: allocations },
    { methods: WRITE, path: "/v1/node/:id/drain", handler: drain },
    { methods: WRITE, path: "/v1/node/:id/eligibility", handler: eligibility },
  ];
}
