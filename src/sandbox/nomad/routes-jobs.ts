import { canonicalizeJob, toStoredJob } from "./canonical.js";
import { jobDiff } from "./diff.js";
import { badRequest, notFound } from "./errors.js";
import { blocking, GET, missing, WRITE, type Context, type Reply, type Route } from "./http.js";
import { isRecord } from "./json.js";
import { parseJobHcl } from "./parse.js";
import { planJob } from "./plan.js";
import { Fields } from "./read.js";
import { isLive } from "./reconcile.js";
import { allocStub, byId, inNamespace, jobStub, parseBool } from "./serialize.js";
import type { Simulation } from "./sim.js";
import { jobKey } from "./store.js";
import type { Job } from "./types.js";

/** /v1/jobs, /v1/jobs/parse and /v1/job/:id/... (command/agent/job_endpoint.go). */
export function jobRoutes(sim: Simulation): Route[] {
  const store = sim.store;
  const find = (ctx: Context): Job | undefined => store.jobs.get(jobKey(ctx.namespace, ctx.params.id ?? ""));

  const list = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const prefix = ctx.query.get("prefix") ?? "";
      const withMeta = parseBool("meta", ctx.query.get("meta"));
      const jobs = [...store.jobs.values()]
        .filter((j) => inNamespace(ctx.namespace, j.Namespace) && j.ID.startsWith(prefix))
        .sort(byId)
        .map((j) => jobStub(j, store.summaries.get(jobKey(j.Namespace, j.ID)), withMeta));
      return { body: jobs, index: store.tableIndex("jobs", "job_summary") };
    });

  const read = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const job = find(ctx);
      if (job === undefined) return missing("job not found", store.tableIndex("jobs"));
      return { body: job, index: job.ModifyIndex };
    });

  const register = (ctx: Context): Reply => {
    const body = Fields.of(ctx.body(), "JobRegisterRequest");
    if (!body.has("Job")) throw badRequest("Job must be specified");
    const input = body.raw("Job");
    if (!isRecord(input) || typeof input.ID !== "string") throw badRequest("Job ID hasn't been provided");
    if (ctx.params.id !== undefined && input.ID !== ctx.params.id)
      throw badRequest("Job ID does not match name");
    const job = placeJob(ctx, canonicalizeJob(input), sim.region);
    const submission = body.child("Submission");
    const reply = sim.jobs.register(job, {
      enforceIndex: body.bool("EnforceIndex"),
      jobModifyIndex: body.int("JobModifyIndex"),
      preserveCounts: body.bool("PreserveCounts"),
      submission:
        submission === undefined
          ? undefined
          : {
              Source: submission.str("Source"),
              Format: submission.str("Format"),
              VariableFlags: submission.stringMap("VariableFlags"),
              Variables: submission.str("Variables"),
            },
    });
    return { body: reply, index: reply.Index };
  };

  const parse = async (ctx: Context): Promise<Reply> => {
    const body = Fields.of(ctx.body(), "JobsParseRequest");
    const hcl = body.str("JobHCL");
    if (hcl === "") throw badRequest("Job spec is empty");
    if (body.bool("HCLv1"))
      throw badRequest("the Nomad API double parses HCL2 job files only (HCLv1 is not supported)");
    const job = await parseJobHcl(hcl, body.optStr("Variables"));
    if (!body.bool("Canonicalize")) return { body: job };
    // api.Job keeps its own reschedule/migrate blocks (canonicalize merges copies into the groups).
    return {
      body: { ...canonicalizeJob(job), Reschedule: job.Reschedule ?? null, Migrate: job.Migrate ?? null },
    };
  };

  const plan = (ctx: Context): Reply => {
    const body = Fields.of(ctx.body(), "JobPlanRequest");
    const input = body.raw("Job");
    if (!isRecord(input)) throw badRequest("Job must be specified");
    if (typeof input.ID !== "string") throw badRequest("Job must have a valid ID");
    if (input.ID !== ctx.params.id) throw badRequest("Job ID does not match");
    const job = placeJob(ctx, canonicalizeJob(input), sim.region);
    const reply = planJob(sim, toStoredJob(job), body.bool("Diff"));
    return { body: reply, index: reply.Index };
  };

  const deregister = (ctx: Context): Reply => {
    const purge = parseBool("purge", ctx.query.get("purge"));
    const reply = sim.jobs.deregister(ctx.namespace, ctx.params.id ?? "", purge);
    return { body: reply, index: reply.Index };
  };

  const versions = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const diffs = parseBool("diffs", ctx.query.get("diffs"));
      const list = store.versions.get(jobKey(ctx.namespace, ctx.params.id ?? "")) ?? [];
      const first = list[0];
      if (first === undefined) return missing("job versions not found", store.tableIndex("job_version"));
      const body = {
        Versions: list,
        Diffs: diffs ? list.slice(0, -1).map((next, i) => jobDiff(list[i + 1], next, true)) : null,
        Index: first.ModifyIndex,
        LastContact: 0,
        KnownLeader: true,
        NextToken: "",
      };
      return { body, index: first.ModifyIndex };
    });

  const allocations = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const all = parseBool("all", ctx.query.get("all"));
      const job = find(ctx);
      const allocs = store.allocsOfJob(ctx.namespace, ctx.params.id ?? "");
      // Without ?all, only allocations of the current incarnation of the job (same CreateIndex).
      const shown =
        all || job === undefined ? allocs : allocs.filter((a) => a.Job?.CreateIndex === job.CreateIndex);
      return { body: shown.sort(byId).map((a) => allocStub(a)), index: store.tableIndex("allocs") };
    });

  const evaluations = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => ({
      body: store.evalsOfJob(ctx.namespace, ctx.params.id ?? "").sort(byId),
      index: store.tableIndex("evals"),
    }));

  const deployments = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => ({
      body: store.deploymentsOfJob(ctx.namespace, ctx.params.id ?? ""),
      index: store.tableIndex("deployment"),
    }));

  const latestDeployment = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => ({
      body: store.latestDeployment(ctx.namespace, ctx.params.id ?? "") ?? null,
      index: store.tableIndex("deployment"),
    }));

  const summary = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const found = store.summaries.get(jobKey(ctx.namespace, ctx.params.id ?? ""));
      if (found === undefined) return missing("job not found", store.tableIndex("job_summary"));
      return { body: found, index: found.ModifyIndex };
    });

  const submission = (ctx: Context): Reply => {
    const raw = ctx.query.get("version") ?? "";
    if (!/^\d+$/.test(raw)) throw badRequest("Unable to parse job submission version parameter");
    const found = store.submissions.get(`${jobKey(ctx.namespace, ctx.params.id ?? "")}\u0000${raw}`);
    if (found === undefined) throw notFound("job source not found");
    return { body: found, index: found.JobModifyIndex };
  };

  const revert = (ctx: Context): Reply => {
    const body = Fields.of(ctx.body(), "JobRevertRequest");
    const jobId = body.str("JobID");
    if (jobId === "") throw badRequest("JobID must be specified");
    if (jobId !== ctx.params.id) throw badRequest("Job ID does not match");
    const reply = sim.jobs.revert(
      ctx.namespace,
      jobId,
      body.int("JobVersion"),
      body.optInt("EnforcePriorVersion"),
    );
    return { body: reply, index: reply.Index };
  };

  const scaleStatus = (ctx: Context): Promise<Reply> =>
    blocking(ctx, store, () => {
      const job = find(ctx);
      if (job === undefined) throw notFound("job not found");
      const allocs = store
        .allocsOfJob(job.Namespace, job.ID)
        .filter((a) => isLive(a) && a.DeploymentStatus?.Canary !== true);
      const events = sim.jobs.scalingEventsOf(job.Namespace, job.ID);
      const groups = Object.fromEntries(
        (job.TaskGroups ?? []).map((g) => {
          const mine = allocs.filter((a) => a.TaskGroup === g.Name);
          return [
            g.Name,
            {
              Desired: g.Count,
              Placed: mine.length,
              Running: mine.filter((a) => a.ClientStatus === "running").length,
              Healthy: mine.filter((a) => a.DeploymentStatus?.Healthy === true).length,
              Unhealthy: mine.filter((a) => a.DeploymentStatus?.Healthy === false).length,
              Events: events[g.Name] ?? null,
            },
          ];
        }),
      );
      const index = Math.max(job.ModifyIndex, ...allocs.map((a) => a.ModifyIndex));
      const body = {
        JobID: job.ID,
        Namespace: job.Namespace,
        JobCreateIndex: job.CreateIndex,
        JobModifyIndex: job.ModifyIndex,
        JobStopped: job.Stop,
        TaskGroups: groups,
      };
      return { body, index };
    });

  const scale = (ctx: Context): Reply => {
    const body = Fields.of(ctx.body(), "ScalingRequest");
    const target = body.child("Target");
    const jobTarget = target?.str("Job") ?? "";
    if (jobTarget !== "" && jobTarget !== ctx.params.id)
      throw badRequest("job ID in payload did not match URL");
    const group = target?.str("Group") ?? "";
    if (group === "") throw badRequest("missing task group name for scaling action");
    const count = body.optInt("Count");
    if (count !== undefined && count < 0) throw badRequest("scaling action count can't be negative");
    const reply = sim.jobs.scale(ctx.namespace, ctx.params.id ?? "", group, count, {
      Message: body.str("Message"),
      Error: body.bool("Error"),
      Meta: body.json("Meta"),
    });
    return { body: reply, index: reply.Index };
  };

  const evaluate = (ctx: Context): Reply => {
    const raw = ctx.optionalBody();
    if (raw !== undefined) {
      const jobId = Fields.of(raw, "JobEvaluateRequest").str("JobID");
      if (jobId === "") throw badRequest("Job ID must be specified");
      if (jobId !== ctx.params.id) throw badRequest("JobID not same as job name");
    }
    const reply = sim.jobs.evaluate(ctx.namespace, ctx.params.id ?? "");
    return { body: reply, index: reply.Index };
  };

  return [
    { methods: GET, path: "/v1/jobs", handler: list },
    { methods: WRITE, path: "/v1/jobs", handler: register },
    { methods: WRITE, path: "/v1/jobs/parse", handler: parse },
    { methods: GET, path: "/v1/job/:id", handler: read },
    { methods: WRITE, path: "/v1/job/:id", handler: register },
    { methods: ["DELETE"], path: "/v1/job/:id", handler: deregister },
    { methods: WRITE, path: "/v1/job/:id/plan", handler: plan },
    { methods: GET, path: "/v1/job/:id/versions", handler: versions },
    { methods: GET, path: "/v1/job/:id/allocations", handler: allocations },
    { methods: GET, path: "/v1/job/:id/evaluations", handler: evaluations },
    { methods: GET, path: "/v1/job/:id/deployments", handler: deployments },
    { methods: GET, path: "/v1/job/:id/deployment", handler: latestDeployment },
    { methods: GET, path: "/v1/job/:id/summary", handler: summary },
    { methods: GET, path: "/v1/job/:id/submission", handler: submission },
    { methods: WRITE, path: "/v1/job/:id/revert", handler: revert },
    { methods: GET, path: "/v1/job/:id/scale", handler: scaleStatus },
    { methods: WRITE, path: "/v1/job/:id/scale", handler: scale },
    { methods: WRITE, path: "/v1/job/:id/evaluate", handler: evaluate },
  ];
}

/** apiJobAndRequestToStructs: ?namespace= and ?region= win over the job's own fields. */
function placeJob(ctx: Context, job: Job, agentRegion: string): Job {
  const queryNamespace = ctx.query.get("namespace");
  const queryRegion = ctx.query.get("region");
  const region = queryRegion || (job.Region === "" || job.Region === "global" ? agentRegion : job.Region);
  return { ...job, Namespace: queryNamespace || job.Namespace || "default", Region: region };
}
