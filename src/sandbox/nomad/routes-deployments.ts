import { badRequest } from "./errors.js";
import { blocking, GET, missing, WRITE, type Context, type Reply, type Route } from "./http.js";
import { Fields } from "./read.js";
import { allocStub, byId, inNamespace } from "./serialize.js";
import type { Simulation } from "./sim.js";

/** /v1/deployments and /v1/deployment/... (command/agent/deployment_endpoint.go). */
export function deploymentRoutes(sim: Simulation): Route[] {
  const store = sim.store;

  const list = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const prefix = ctx.query.get("prefix") ?? "";
      const ascending = ctx.query.get("ascending") === "true";
      const deployments = [...store.deployments.values()]
        .filter((d) => inNamespace(ctx.namespace, d.Namespace) && d.ID.startsWith(prefix))
        .sort((a, b) => (ascending ? a.CreateIndex - b.CreateIndex : b.CreateIndex - a.CreateIndex));
      return { body: deployments, index: store.tableIndex("deployment") };
    });

  const read = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const found = store.deployments.get(ctx.params.id ?? "");
      if (found === undefined) return missing("deployment not found", store.tableIndex("deployment"));
      return { body: found, index: found.ModifyIndex };
    });

  const allocations = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => ({
      body: [...store.allocs.values()]
        .filter((a) => a.DeploymentID === ctx.params.id)
        .sort(byId)
        .map((a) => allocStub(a)),
      index: store.tableIndex("allocs"),
    }));

  /** Promote and pause carry the deployment ID in the body too, and it must match the path. */
  const checkedBody = (ctx: Context, struct: string): Fields => {
    const body = Fields.of(ctx.body(), struct);
    const id = body.str("DeploymentID");
    if (id === "") throw badRequest("DeploymentID must be specified");
    if (id !== ctx.params.id) throw badRequest("Deployment ID does not match");
    return body;
  };

  const promote = (ctx: Context): Reply => {
    const body = checkedBody(ctx, "DeploymentPromoteRequest");
    const reply = sim.deployments.promote(ctx.params.id ?? "", {
      DeploymentID: body.str("DeploymentID"),
      All: body.bool("All"),
      Groups: body.strings("Groups"),
    });
    return { body: reply, index: reply.Index };
  };

  const fail = (ctx: Context): Reply => {
    const reply = sim.deployments.failByUser(ctx.params.id ?? "");
    return { body: reply, index: reply.Index };
  };

  return [
    { methods: GET, path: "/v1/deployments", handler: list },
    { methods: GET, path: "/v1/deployment/:id", handler: read },
    { methods: GET, path: "/v1/deployment/allocations/:id", handler: allocations },
    { methods: WRITE, path: "/v1/deployment/promote/:id", handler: promote },
    { methods: WRITE, path: "/v1/deployment/fail/:id", handler: fail },
  ];
}
