import { badRequest, notFound, serverError } from "./errors.js";
import { blocking, GET, missing, WRITE, type Context, type Reply, type Route } from "./http.js";
import { newEval } from "./objects.js";
import { Fields } from "./read.js";
import { isLive } from "./reconcile.js";
import { allocStub, byId, evalStub, inNamespace, parseBool } from "./serialize.js";
import type { Simulation } from "./sim.js";

/** Allocations, evaluations and the client endpoints (restart, logs). */
export function allocRoutes(sim: Simulation): Route[] {
  const store = sim.store;

  const list = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const prefix = ctx.query.get("prefix") ?? "";
      const options = {
        taskStates: ctx.query.get("task_states") !== "false",
        resources: parseBool("resources", ctx.query.get("resources")),
      };
      const allocs = [...store.allocs.values()]
        .filter((a) => inNamespace(ctx.namespace, a.Namespace) && a.ID.startsWith(prefix))
        .sort(byId)
        .map((a) => allocStub(a, options));
      return { body: allocs, index: store.tableIndex("allocs") };
    });

  const read = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const alloc = store.allocs.get(ctx.params.id ?? "");
      if (alloc === undefined) return missing("alloc not found", store.tableIndex("allocs"));
      return { body: alloc, index: alloc.ModifyIndex };
    });

  /** Alloc.Stop: a desired transition to migrate, and an evaluation to act on it. */
  const stop = (ctx: Context): Reply => {
    const alloc = store.allocs.get(ctx.params.id ?? "");
    if (alloc === undefined || alloc.Job === null)
      throw notFound(`Unknown allocation "${ctx.params.id ?? ""}"`);
    const job = alloc.Job;
    const evaluation = newEval(job, { triggeredBy: "alloc-stop", jobModifyIndex: job.ModifyIndex });
    const index = store.write("AllocationUpdateDesiredStatus", (tx) => {
      alloc.DesiredTransition = { ...alloc.DesiredTransition, Migrate: true };
      tx.upsertAlloc(alloc, true);
      tx.upsertEval(evaluation);
      return tx.index;
    });
    sim.enqueue(evaluation.ID);
    return { body: { EvalID: evaluation.ID, Index: index }, index };
  };

  const restart = (ctx: Context): Reply => {
    const alloc = store.allocs.get(ctx.params.id ?? "");
    if (alloc === undefined) throw notFound(`Unknown allocation "${ctx.params.id ?? ""}"`);
    const body = Fields.of(ctx.optionalBody() ?? {}, "AllocRestartRequest");
    const running = Object.entries(alloc.TaskStates ?? {})
      .filter(([, s]) => s.State === "running")
      .map(([name]) => name);
    const taskName = body.str("TaskName");
    if (taskName !== "" && !Object.keys(alloc.TaskStates ?? {}).includes(taskName)) {
      throw serverError(`Failed to restart task "${taskName}": task not found`);
    }
    if (!isLive(alloc) || running.length === 0) throw serverError("Task not running");
    sim.client.restart(alloc.ID, taskName === "" || body.bool("AllTasks") ? running : [taskName]);
    return { body: undefined };
  };

  const logs = (ctx: Context): Reply => {
    const alloc = store.allocs.get(ctx.params.id ?? "");
    if (alloc === undefined) throw notFound(`Unknown allocation "${ctx.params.id ?? ""}"`);
    const task = ctx.query.get("task") ?? "";
    if (task === "") throw badRequest("must provide task name");
    const type = ctx.query.get("type") ?? "";
    if (type === "") throw badRequest("must provide log type (stdout/stderr)");
    if (type !== "stdout" && type !== "stderr") throw badRequest(`invalid log type: ${JSON.stringify(type)}`);
    if (alloc.TaskStates?.[task] === undefined) throw badRequest(`unknown task name ${JSON.stringify(task)}`);
    const text = slice(sim.logs.read(alloc.ID, task, type), ctx.query.get("origin"), ctx.query.get("offset"));
    if (parseBool("plain", ctx.query.get("plain"))) return { body: undefined, text };
    const frame = {
      Data: Buffer.from(text).toString("base64"),
      File: `alloc/logs/${task}.${type}.0`,
      Offset: Buffer.byteLength(text),
    };
    return { body: text === "" ? {} : frame };
  };

  const evaluations = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const prefix = ctx.query.get("prefix") ?? "";
      const job = ctx.query.get("job");
      const evals = [...store.evals.values()]
        .filter(
          (e) =>
            inNamespace(ctx.namespace, e.Namespace) &&
            e.ID.startsWith(prefix) &&
            (job === null || e.JobID === job),
        )
        .sort(byId);
      return { body: evals, index: store.tableIndex("evals") };
    });

  const evaluation = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const found = store.evals.get(ctx.params.id ?? "");
      if (found === undefined) return missing("eval not found", store.tableIndex("evals"));
      const related = parseBool("related", ctx.query.get("related"));
      const body = related ? { ...found, RelatedEvals: relatedEvals(sim, found.ID) } : found;
      return { body, index: found.ModifyIndex };
    });

  const evalAllocations = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => ({
      body: [...store.allocs.values()]
        .filter((a) => a.EvalID === ctx.params.id)
        .sort(byId)
        .map((a) => allocStub(a)),
      index: store.tableIndex("allocs"),
    }));

  return [
    { methods: GET, path: "/v1/allocations", handler: list },
    { methods: GET, path: "/v1/allocation/:id", handler: read },
    { methods: WRITE, path: "/v1/allocation/:id/stop", handler: stop },
    { methods: WRITE, path: "/v1/client/allocation/:id/restart", handler: restart },
    { methods: GET, path: "/v1/client/fs/logs/:id", handler: logs },
    { methods: GET, path: "/v1/evaluations", handler: evaluations },
    { methods: GET, path: "/v1/evaluation/:id", handler: evaluation },
    { methods: GET, path: "/v1/evaluation/:id/allocations", handler: evalAllocations },
  ];
}

/** The evaluations linked to one through PreviousEval / NextEval / BlockedEval, both ways. */
function relatedEvals(sim: Simulation, id: string) {
  const evals = [...sim.store.evals.values()];
  const seen = new Set([id]);
  const queue = [id];
  while (queue.length > 0) {
    const current = sim.store.evals.get(queue.shift() ?? "");
    if (current === undefined) continue;
    const links = [
      current.PreviousEval,
      current.NextEval,
      current.BlockedEval,
      ...evals
        .filter((e) => [e.PreviousEval, e.NextEval, e.BlockedEval].includes(current.ID))
        .map((e) => e.ID),
    ];
    for (const link of links.filter((l) => l !== "" && !seen.has(l))) {
      seen.add(link);
      queue.push(link);
    }
  }
  seen.delete(id);
  return [...seen].flatMap((e) => {
    const found = sim.store.evals.get(e);
    return found === undefined ? [] : [evalStub(found)];
  });
}

/** origin=start|end with a byte offset (fs_endpoint.go logs). */
function slice(text: string, origin: string | null, offsetRaw: string | null): string {
  const bytes = Buffer.from(text);
  if (origin !== null && origin !== "" && origin !== "start" && origin !== "end")
    throw badRequest("origin must be start or end");
  const offset = offsetRaw === null || offsetRaw === "" ? 0 : Number(offsetRaw);
  if (!Number.isInteger(offset) || offset < 0)
    throw badRequest(`Failed to parse offset "${offsetRaw ?? ""}"`);
  const part =
    origin === "end"
      ? bytes.subarray(Math.max(0, bytes.length - offset))
      : bytes.subarray(Math.min(offset, bytes.length));
  return origin === "end" && offset === 0 ? "" : part.toString("utf8");
}
