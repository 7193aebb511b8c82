import { afterEach, describe, expect, it } from "vitest";
import {
  startNomadDouble,
  type NomadDouble,
  type NomadDoubleOptions,
} from "../../src/sandbox/nomad/index.js";
import type { AllocationListStub } from "../../src/sandbox/nomad/serialize.js";
import type { Deployment, Evaluation, Job } from "../../src/sandbox/nomad/types.js";
import { NomadApi, readLines, type Answer } from "../nomad/api.js";
import { readReference, referenceDir, shapeProblems, type ShapeOptions } from "../support/reference.js";

/**
 * Contract tests against ../shared/reference/nomad: every response sample of Nomad's API docs is
 * compared with what the double answers to the same call (same fields, same JSON types, values
 * ignored), and the event stream with the framing example and the wire strings of nomad-enums.json.
 *
 * The samples come from docs of mixed Nomad versions (0.6 to 1.x). Where a sample shows an older
 * shape that current Nomad no longer produces, the field is removed from the sample before the
 * comparison, each with the reason next to it (`outdated`); fields whose keys are data (node IDs,
 * driver and attribute names) are compared as maps. Lists compare their first sample element with
 * the closest element of the double's list, since the order of a list (sorted by ID) is not the
 * sample's.
 */

type Json = unknown;

const sample = (name: string): Json => readReference("nomad", "samples", name);

interface Enums {
  eventTopics: string[];
  eventTypesByTopic: Record<string, string[]>;
  eventPayloadKeyByTopic: Record<string, string>;
  eventFilterKeys: Record<string, string[]>;
  taskEventTypes: string[];
  taskEventDetailsKeys: Record<string, string[]>;
  taskStates: string[];
  allocClientStatus: string[];
  allocDesiredStatus: string[];
  deploymentStatus: string[];
  deploymentStatusDescriptions: string[];
  evalStatus: string[];
  nodeStatus: string[];
  nodeSchedulingEligibility: string[];
  jobStatus: string[];
  diffTypes: string[];
  taskDiffAnnotations: string[];
  taskGroupDiffUpdatesKeys: string[];
  desiredUpdatesFields: string[];
  registerEnforceIndexErrPrefix: string;
  neverEmittedEventTypes: Record<string, string>;
}

let nomad: NomadDouble | undefined;
let api: NomadApi;

async function start(options: NomadDoubleOptions = {}): Promise<NomadApi> {
  nomad = await startNomadDouble(options);
  api = new NomadApi(nomad.url);
  return api;
}

const double = (): NomadDouble => {
  if (nomad === undefined) throw new Error("no double");
  return nomad;
};

afterEach(async () => {
  await nomad?.close();
  nomad = undefined;
});

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A copy of `value` without the fields at `paths` ("a.b[].c", "[].x", "m{}.y"). */
function outdated(value: Json, paths: Readonly<Record<string, string>>): Json {
  const copy = structuredClone(value);
  for (const path of Object.keys(paths)) remove(copy, path.match(/[^.[\]{}]+|\[\]|\{\}/g) ?? []);
  return copy;
}

function remove(value: unknown, tokens: readonly string[]): void {
  const [head, ...rest] = tokens;
  if (head === undefined) return;
  if (head === "[]") {
    if (Array.isArray(value)) value.forEach((item) => remove(item, rest));
  } else if (head === "{}") {
    if (isObject(value)) Object.values(value).forEach((item) => remove(item, rest));
  } else if (isObject(value)) {
    if (rest.length === 0) delete value[head];
    else remove(value[head], rest);
  }
}

/** The docs mark elided parts of the plan sample with "...": such lists are left out of the check. */
function withoutPlaceholders(value: Json): Json {
  if (Array.isArray(value)) return value.every((v) => v === "...") ? [] : value.map(withoutPlaceholders);
  if (isObject(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutPlaceholders(v)]));
  return value;
}

/** The sample's first element against the closest element of the double's list. */
function listProblems(sampleList: Json, actual: Json, options: ShapeOptions = {}): string[] {
  if (!Array.isArray(sampleList) || !Array.isArray(actual)) return shapeProblems(sampleList, actual, options);
  if (sampleList.length === 0) return [];
  if (actual.length === 0) return ["(root): empty, the sample has elements"];
  const attempts = actual.map((candidate) => shapeProblems(sampleList[0], candidate, options));
  return attempts.find((p) => p.length === 0) ?? attempts.sort((a, b) => a.length - b.length)[0] ?? [];
}

const ZERO_TIMES = "current Nomad serializes unset task times as null; this 0.x sample shows Go's zero time";

async function settle(): Promise<void> {
  await double().settle();
}

/** The "example" job with a task-level service, running (deployment successful, version 0 stable). */
async function runExample(): Promise<void> {
  await api.run("contract-example-service.hcl");
  await settle();
}

async function registerJob(
  job: Json,
  extra: Record<string, unknown> = {},
): Promise<Answer<Record<string, unknown>>> {
  return api.post<Record<string, unknown>>("/v1/jobs", { Job: job, ...extra });
}

/** Version N+1 of "example" with a new image and one canary: its deployment waits for promotion. */
async function canaryUpdate(image: string): Promise<void> {
  const job = (await api.parse("contract-example-service.hcl", `image = "${image}"`)) as unknown as Job;
  const update = job.TaskGroups?.[0]?.Update;
  if (update !== null && update !== undefined) update.Canary = 1;
  await registerJob(job);
  await settle();
}

describe.skipIf(referenceDir() === undefined)("Nomad API contract (docs samples, nomad-enums.json)", () => {
  const enums = (): Enums => readReference("nomad", "nomad-enums.json") as Enums;

  describe("jobs", () => {
    it("jobs-parse-request.json is accepted; jobs-parse-response.json ← POST /v1/jobs/parse", async () => {
      await start();
      const request = await api.post("/v1/jobs/parse", sample("jobs-parse-request.json"));
      expect(request.status).toBe(200);
      const parsed = await api.post("/v1/jobs/parse", { JobHCL: 'job "my-job" {}', Canonicalize: true });
      const expected = outdated(sample("jobs-parse-response.json"), {
        // api.Job.Canonicalize gives service jobs the default update strategy (api/jobs.go); the
        // sample, though marked canonicalized, shows none.
        Update: "default update strategy of service jobs",
      });
      expect(shapeProblems(expected, parsed.body)).toEqual([]);
    });

    it("job-register-request.json is accepted; job-register-response.json ← POST /v1/jobs", async () => {
      await start();
      const answer = await api.post("/v1/jobs", sample("job-register-request.json"));
      expect(answer.status).toBe(200);
      expect(shapeProblems(sample("job-register-response.json"), answer.body)).toEqual([]);
    });

    it("job-read-response.json ← GET /v1/job/:id (the sample's batch, periodic, parameterized job)", async () => {
      await start();
      const registered = await api.run("contract-periodic.hcl");
      // Periodic and parameterized jobs get no evaluation, and are "running" until stopped.
      expect(registered.EvalID).toBe("");
      const answer = await api.get<Job>("/v1/job/example");
      expect(answer.body.Status).toBe("running");
      const expected = outdated(sample("job-read-response.json"), {
        // 0.x task-level networks; since 0.12 networks are the group's (task Resources.Networks null).
        "TaskGroups[].Tasks[].Resources.Networks": "group networks",
        // The sample lists the redis task's docker port_map (pre-0.12 driver syntax): free-form config.
        "TaskGroups[].Tasks[].Config.port_map": "driver config is free-form",
      });
      expect(shapeProblems(expected, answer.body)).toEqual([]);
    });

    it("jobs-list-response.json ← GET /v1/jobs; job-summary-response.json ← GET /v1/job/:id/summary", async () => {
      await start();
      await runExample();
      expect(listProblems(sample("jobs-list-response.json"), (await api.get("/v1/jobs")).body)).toEqual([]);
      expect(
        shapeProblems(sample("job-summary-response.json"), (await api.get("/v1/job/example/summary")).body),
      ).toEqual([]);
    });

    it("job-versions-response.json ← GET /v1/job/:id/versions?diffs=true (an env var added in version 1)", async () => {
      await start();
      const job = (await api.parse("contract-example.hcl")) as unknown as Job;
      await registerJob(job);
      await settle();
      const task = job.TaskGroups?.[0]?.Tasks[0];
      if (task !== undefined) task.Env = { foo: "bar" };
      await registerJob(job);
      await settle();
      const answer = await api.get("/v1/job/example/versions?diffs=true");
      expect(shapeProblems(sample("job-versions-response.json"), answer.body)).toEqual([]);
    });

    it("job-plan-response.json ← POST /v1/job/:id/plan (a new job that does not fully fit)", async () => {
      await start();
      const job = (await api.parse("contract-example.hcl")) as unknown as Job;
      const group = job.TaskGroups?.[0];
      if (group !== undefined) group.Count = 40;
      const answer = await api.post("/v1/job/example/plan", { Job: job, Diff: true });
      const expected = outdated(withoutPlaceholders(sample("job-plan-response.json")), {
        // Current schedulers copy FailedTGAllocs into the blocked evaluation (CreateBlockedEval).
        "CreatedEvals[].FailedTGAllocs": "blocked evaluations carry the failed metrics",
      });
      expect(shapeProblems(expected, answer.body, { maps: ["CreatedEvals[].ClassEligibility"] })).toEqual([]);
    });

    it("job-scale-status-response.json, job-scale-request.json, job-scale-response.json ← /v1/job/:id/scale", async () => {
      await start();
      await runExample();
      expect(
        shapeProblems(
          sample("job-scale-status-response.json"),
          (await api.get("/v1/job/example/scale")).body,
        ),
      ).toEqual([]);
      const scaled = await api.post("/v1/job/example/scale", sample("job-scale-request.json"));
      expect(scaled.status).toBe(200);
      expect(shapeProblems(sample("job-scale-response.json"), scaled.body)).toEqual([]);
    });

    it("job-revert-response.json ← POST /v1/job/:id/revert; job-deregister-response.json ← DELETE /v1/job/:id", async () => {
      await start();
      await runExample();
      await api.run("contract-example-service.hcl", 'image = "redis:7.2"');
      await settle();
      const reverted = await api.post("/v1/job/example/revert", { JobID: "example", JobVersion: 0 });
      expect(shapeProblems(sample("job-revert-response.json"), reverted.body)).toEqual([]);
      const stopped = await api.request("DELETE", "/v1/job/example");
      expect(shapeProblems(sample("job-deregister-response.json"), stopped.body)).toEqual([]);
    });

    it("a stale EnforceIndex answers 500 with the registerEnforceIndexErrPrefix", async () => {
      await start();
      await runExample();
      const job = await api.parse("contract-example-service.hcl");
      const stale = await registerJob(job, { EnforceIndex: true, JobModifyIndex: 1 });
      expect(stale.status).toBe(500);
      expect(stale.text.startsWith(enums().registerEnforceIndexErrPrefix)).toBe(true);
    });
  });

  describe("allocations", () => {
    it("allocation-read-response.json ← GET /v1/allocation/:id (a rescheduled allocation)", async () => {
      await start();
      await runExample();
      double().failAllocation("example");
      await settle();
      const allocs = (await api.get<AllocationListStub[]>("/v1/job/example/allocations")).body;
      const rescheduled = allocs.find((a) => a.RescheduleTracker !== null);
      const answer = await api.get(`/v1/allocation/${rescheduled?.ID ?? ""}`);
      const expected = outdated(sample("allocation-read-response.json"), {
        "TaskStates{}.FinishedAt": ZERO_TIMES,
        "TaskStates{}.LastRestart": ZERO_TIMES,
        // 0.x task-level networks (see job-read): current allocations put group ports in
        // SharedResources and leave each task's Networks empty.
        "Job.TaskGroups[].Tasks[].Resources.Networks": "group networks",
        "TaskResources{}.Networks": "group networks",
        "SharedResources.Networks": "group networks (the sample predates them)",
        "Job.TaskGroups[].Tasks[].Config.port_map": "driver config is free-form",
        // structs.Task has no Spreads: spreads are job and group level.
        "Job.TaskGroups[].Tasks[].Spreads": "no task-level spreads",
        // The docs show the reschedule delay as a string; it is a Duration (an integer), as in the
        // job-allocations sample.
        "RescheduleTracker.Events[].Delay": "docs typo, checked below",
      });
      expect(shapeProblems(expected, answer.body, { maps: ["Metrics.Scores"] })).toEqual([]);
      const body = answer.body as { RescheduleTracker: { Events: { Delay: unknown }[] } };
      expect(typeof body.RescheduleTracker.Events[0]?.Delay).toBe("number");
    });

    it("allocations-list-response.json ← GET /v1/allocations; job-allocations-response.json ← GET /v1/job/:id/allocations", async () => {
      await start();
      await runExample();
      expect(
        listProblems(sample("allocations-list-response.json"), (await api.get("/v1/allocations")).body),
      ).toEqual([]);
      // The job-allocations sample shows a rescheduled allocation.
      double().failAllocation("example");
      await settle();
      const jobAllocs = outdated(sample("job-allocations-response.json"), {
        "[].TaskStates{}.FinishedAt": ZERO_TIMES,
        // structs.AllocListStub has no PreviousAllocation (the allocations-list sample, 1.2, neither).
        "[].PreviousAllocation": "not in the list stub",
      });
      expect(listProblems(jobAllocs, (await api.get("/v1/job/example/allocations")).body)).toEqual([]);
    });

    it("allocation-stop-response.json ← POST /v1/allocation/:id/stop; allocation-restart-request.json", async () => {
      await start();
      await runExample();
      const [alloc] = (await api.get<AllocationListStub[]>("/v1/job/example/allocations")).body;
      // The sample's TaskName is a placeholder: the client answers like Nomad for an unknown task.
      const restartSample = await api.post(
        `/v1/client/allocation/${alloc?.ID ?? ""}/restart`,
        sample("allocation-restart-request.json"),
      );
      expect([restartSample.status, restartSample.text]).toEqual([
        500,
        'Failed to restart task "FOO": task not found',
      ]);
      expect(
        (await api.post(`/v1/client/allocation/${alloc?.ID ?? ""}/restart`, { TaskName: "redis" })).status,
      ).toBe(200);
      const stopped = await api.post(`/v1/allocation/${alloc?.ID ?? ""}/stop`);
      expect(shapeProblems(sample("allocation-stop-response.json"), stopped.body)).toEqual([]);
    });
  });

  describe("deployments and evaluations", () => {
    it("deployment-read-response.json, deployment-allocations-response.json", async () => {
      await start();
      await runExample();
      const deployment = (await api.get<Deployment>("/v1/job/example/deployment")).body;
      expect(
        shapeProblems(
          sample("deployment-read-response.json"),
          (await api.get(`/v1/deployment/${deployment.ID}`)).body,
        ),
      ).toEqual([]);
      const expected = outdated(sample("deployment-allocations-response.json"), {
        "[].TaskStates{}.FinishedAt": ZERO_TIMES,
        // The sample's allocation had not reported its health yet; the double's have.
        "[].DeploymentStatus": "health already reported",
      });
      expect(
        listProblems(expected, (await api.get(`/v1/deployment/allocations/${deployment.ID}`)).body),
      ).toEqual([]);
    });

    it("job-deployments-response.json, job-latest-deployment-response.json, deployment-promote-response.json", async () => {
      await start();
      await runExample();
      await canaryUpdate("redis:7.2");
      expect(
        listProblems(
          sample("job-deployments-response.json"),
          (await api.get("/v1/job/example/deployments")).body,
        ),
      ).toEqual([]);
      const latest = await api.get<Deployment>("/v1/job/example/deployment");
      expect(shapeProblems(sample("job-latest-deployment-response.json"), latest.body)).toEqual([]);
      const promoted = await api.post(`/v1/deployment/promote/${latest.body.ID}`, {
        DeploymentID: latest.body.ID,
        All: true,
      });
      expect(shapeProblems(sample("deployment-promote-response.json"), promoted.body)).toEqual([]);
    });

    it("deployment-fail-response.json ← POST /v1/deployment/fail/:id (auto_revert to the stable version)", async () => {
      await start();
      await runExample();
      await canaryUpdate("redis:7.2");
      const latest = (await api.get<Deployment>("/v1/job/example/deployment")).body;
      const failed = await api.post<{ RevertedJobVersion: number }>(`/v1/deployment/fail/${latest.ID}`);
      expect(shapeProblems(sample("deployment-fail-response.json"), failed.body)).toEqual([]);
      expect(failed.body.RevertedJobVersion).toBe(0);
    });

    it("evaluation-read-response.json ← GET /v1/evaluation/:id?related=true (blocked: no node available)", async () => {
      await start({ nodes: [{ name: "only" }] });
      double().nodeDown("only");
      await api.run("contract-example.hcl");
      await settle();
      const evals = (await api.get<Evaluation[]>("/v1/job/example/evaluations")).body;
      const blocked = evals.find((e) => e.Status === "blocked");
      const answer = await api.get(`/v1/evaluation/${blocked?.ID ?? ""}?related=true`);
      expect(shapeProblems(sample("evaluation-read-response.json"), answer.body)).toEqual([]);
    });
  });

  describe("nodes", () => {
    it("nodes-list-response.json ← GET /v1/nodes?os=true", async () => {
      await start();
      const answer = await api.get("/v1/nodes?os=true");
      const maps = ["Drivers", "Drivers{}.Attributes", "Attributes"];
      expect(listProblems(sample("nodes-list-response.json"), answer.body, { maps })).toEqual([]);
    });

    it("node-drain-request.json → node-drain-response.json; node-eligibility-request.json → node-eligibility-response.json", async () => {
      await start();
      const [node] = (await api.get<{ ID: string }[]>("/v1/nodes")).body;
      const drained = await api.post(`/v1/node/${node?.ID ?? ""}/drain`, sample("node-drain-request.json"));
      expect(shapeProblems(sample("node-drain-response.json"), drained.body)).toEqual([]);
      await settle();
      const eligibility = await api.post(
        `/v1/node/${node?.ID ?? ""}/eligibility`,
        sample("node-eligibility-request.json"),
      );
      expect(shapeProblems(sample("node-eligibility-response.json"), eligibility.body)).toEqual([]);
    });
  });

  describe("event stream", () => {
    it("event-stream-NodeRegistration.json: the first frame of the stream", async () => {
      await start();
      const lines = await readLines(
        await fetch(`${double().url}/v1/event/stream?index=1`),
        (l) => l.length >= 2,
      );
      const frame: unknown = JSON.parse(lines[1] ?? "null");
      const node = "Events[].Payload.Node";
      const maps = [`${node}.Attributes`, `${node}.Meta`, `${node}.Drivers`, `${node}.Drivers{}.Attributes`];
      expect(shapeProblems(sample("event-stream-NodeRegistration.json"), frame, { maps })).toEqual([]);
    });

    it("event-stream.framing-example.ndjson: {} heartbeat first, then one compact JSON object a line", async () => {
      const dir = referenceDir() ?? "";
      const { readFileSync } = await import("node:fs");
      const example = readFileSync(`${dir}/nomad/samples/event-stream.framing-example.ndjson`, "utf8")
        .split("\n")
        .filter((l) => l !== "");
      await start({ heartbeatMs: 30 });
      const lines = await readLines(
        await fetch(`${double().url}/v1/event/stream?index=1&topic=Node`),
        (l) => l.length >= 5,
      );
      expect(lines[0]).toBe(example[0]);
      const frame = lines[1] ?? "";
      expect(frame).toBe(JSON.stringify(JSON.parse(frame)));
      expect(Object.keys(JSON.parse(frame) as object)).toEqual(
        Object.keys(JSON.parse(example[1] ?? "{}") as object),
      );
      const firstEvent = (text: string) => (JSON.parse(text) as { Events: object[] }).Events[0] ?? {};
      expect(Object.keys(firstEvent(frame))).toEqual(Object.keys(firstEvent(example[1] ?? "{}")));
      expect(lines.slice(4).every((l) => l === "{}")).toBe(true);
    });

    it("emits only the wire strings of nomad-enums.json, with the payload key and filter keys of each topic", async () => {
      const e = enums();
      const events = await everyKindOfEvent();
      const known = new Set(Object.values(e.eventTypesByTopic).flat());
      // A raft entry types every object it changes (events.go eventsFromChanges; the enums' lists are
      // "indicative, not exhaustive"), so a type also shows under topics the lists do not name. The
      // double makes exactly these, each as Nomad's state store does: a client update
      // (AllocClientUpdateRequest) moves its deployment's counters (updateDeploymentWithAlloc), can
      // carry a retry-failed-alloc evaluation (Node.UpdateAlloc) and changes the job's status
      // (setJobStatuses); upserting evaluations changes the job's status too (UpsertEvals).
      const byRaftEntry = new Set([
        "Deployment/AllocationUpdated",
        "Evaluation/AllocationUpdated",
        "Job/AllocationUpdated",
        "Job/EvaluationUpdated",
      ]);
      for (const event of events) {
        const pair = `${event.Topic}/${event.Type}`;
        expect(e.eventTopics, pair).toContain(event.Topic);
        expect(known.has(event.Type), pair).toBe(true);
        expect(Object.keys(e.neverEmittedEventTypes)).not.toContain(event.Type);
        expect(
          e.eventTypesByTopic[event.Topic]?.includes(event.Type) === true || byRaftEntry.has(pair),
          pair,
        ).toBe(true);
        const payloadKey = e.eventPayloadKeyByTopic[event.Topic] ?? "";
        expect(Object.keys(event.Payload)).toEqual([payloadKey]);
        const object = event.Payload[payloadKey] ?? {};
        const filterKeys = e.eventFilterKeys[event.Topic] ?? [];
        expect(event.FilterKeys).toEqual(filterKeys.length === 0 ? null : filterKeys.map((k) => object[k]));
      }
      const pairs = new Set(events.map((ev) => `${ev.Topic}/${ev.Type}`));
      for (const expected of [
        "Node/NodeStreamEvent",
        "Node/NodeDrain",
        "Allocation/PlanResult",
        "Allocation/AllocationUpdateDesiredStatus",
        "Deployment/DeploymentPromotion",
        "Job/JobDeregistered",
      ]) {
        expect(pairs).toContain(expected);
      }
    });

    it("uses the enum strings in objects too: statuses, task events, deployment descriptions", async () => {
      const e = enums();
      const events = await everyKindOfEvent();
      const descriptions = e.deploymentStatusDescriptions.filter((d) => !d.startsWith("<base>"));
      const suffixes = [
        / - rolling back to job version \d+$/,
        / - not rolling back to stable job version \d+ as current job has same specification$/,
      ];
      for (const { Topic, Payload } of events) {
        const object = Payload[e.eventPayloadKeyByTopic[Topic] ?? ""] ?? {};
        if (Topic === "Allocation") {
          expect(e.allocClientStatus).toContain(object.ClientStatus);
          expect(e.allocDesiredStatus).toContain(object.DesiredStatus);
          for (const state of Object.values(
            (object.TaskStates ?? {}) as Record<
              string,
              { State: string; Events: { Type: string; Details: Record<string, string> }[] }
            >,
          )) {
            expect(e.taskStates).toContain(state.State);
            for (const taskEvent of state.Events) {
              expect(e.taskEventTypes).toContain(taskEvent.Type);
              if (taskEvent.Type === "Terminated")
                expect(e.taskEventDetailsKeys.Terminated).toEqual(
                  expect.arrayContaining(Object.keys(taskEvent.Details)),
                );
            }
          }
        }
        if (Topic === "Deployment") {
          expect(e.deploymentStatus).toContain(object.Status);
          const base = suffixes.reduce((text, re) => text.replace(re, ""), String(object.StatusDescription));
          expect(descriptions).toContain(base);
        }
        if (Topic === "Evaluation") expect(e.evalStatus).toContain(object.Status);
        if (Topic === "Node") {
          expect(e.nodeStatus).toContain(object.Status);
          expect(e.nodeSchedulingEligibility).toContain(object.SchedulingEligibility);
        }
        if (Topic === "Job") expect(e.jobStatus).toContain(object.Status);
      }
    });

    it("uses the diff enums in plans: diff types, annotations, update keys, DesiredTGUpdates fields", async () => {
      const e = enums();
      await start();
      await runExample();
      const next = (await api.parse("contract-example-service.hcl", 'image = "redis:7.2"')) as unknown as Job;
      const group = next.TaskGroups?.[0];
      if (group !== undefined) group.Count = 3;
      const plan = await api.post<PlanShape>("/v1/job/example/plan", { Job: next, Diff: true });
      const types: string[] = [];
      const collect = (node: unknown): void => {
        if (Array.isArray(node)) node.forEach(collect);
        else if (isObject(node)) {
          if (typeof node.Type === "string") types.push(node.Type);
          Object.values(node).forEach(collect);
        }
      };
      collect(plan.body.Diff);
      expect(types.every((t) => e.diffTypes.includes(t))).toBe(true);
      for (const tg of plan.body.Diff.TaskGroups) {
        for (const key of Object.keys(tg.Updates ?? {})) expect(e.taskGroupDiffUpdatesKeys).toContain(key);
        for (const task of tg.Tasks)
          for (const a of task.Annotations ?? []) expect(e.taskDiffAnnotations).toContain(a);
        for (const field of tg.Fields ?? [])
          for (const a of field.Annotations ?? []) expect(e.taskDiffAnnotations).toContain(a);
      }
      for (const updates of Object.values(plan.body.Annotations.DesiredTGUpdates)) {
        expect(e.desiredUpdatesFields).toEqual(expect.arrayContaining(Object.keys(updates)));
      }
    });
  });
});

interface PlanShape {
  Diff: {
    TaskGroups: {
      Updates: Record<string, number> | null;
      Fields: { Annotations: string[] | null }[] | null;
      Tasks: { Annotations: string[] | null }[];
    }[];
  };
  Annotations: { DesiredTGUpdates: Record<string, Record<string, number>> };
}

interface StreamEvent {
  Topic: string;
  Type: string;
  FilterKeys: unknown[] | null;
  Payload: Record<string, Record<string, unknown>>;
}

/**
 * Drives the double through everything it simulates (registration, rolling update, canary
 * promotion, failures, rescheduling, node down/up, drain, eligibility, stops, purge) and returns
 * every event of the stream.
 */
async function everyKindOfEvent(): Promise<StreamEvent[]> {
  await start({ heartbeatMs: 1000 });
  const seen: StreamEvent[] = [];
  const response = await fetch(`${double().url}/v1/event/stream?index=1`);
  const reading = readLines(response, () => false, 60_000);
  await runExample();
  await canaryUpdate("redis:7.2");
  const latest = (await api.get<Deployment>("/v1/job/example/deployment")).body;
  await api.post(`/v1/deployment/promote/${latest.ID}`, { DeploymentID: latest.ID, All: true });
  await settle();
  double().failNextPlacement("chat", "element", "crash-loop");
  await api.post("/v1/jobs", { Job: await api.parse("chat.hcl") });
  await settle();
  double().failAllocation("example");
  double().oomKill("chat");
  await settle();
  const [node] = (await api.get<{ ID: string; Name: string }[]>("/v1/nodes")).body;
  double().nodeDown(node?.Name ?? "");
  await settle();
  double().nodeUp(node?.Name ?? "");
  await api.post(`/v1/node/${node?.ID ?? ""}/drain`, { DrainSpec: { Deadline: 0, IgnoreSystemJobs: false } });
  await settle();
  await api.post(`/v1/node/${node?.ID ?? ""}/eligibility`, { Eligibility: "eligible" });
  const [alloc] = (await api.get<AllocationListStub[]>("/v1/job/example/allocations")).body.filter(
    (a) => a.ClientStatus === "running",
  );
  await api.post(`/v1/allocation/${alloc?.ID ?? ""}/stop`);
  await api.post("/v1/job/example/evaluate");
  await settle();
  await api.request("DELETE", "/v1/job/chat");
  await api.request("DELETE", "/v1/job/example?purge=true");
  await settle();
  await double().close();
  nomad = undefined;
  for (const line of await reading) {
    if (line === "{}" || line === "") continue;
    seen.push(...(JSON.parse(line) as { Events: StreamEvent[] }).Events);
  }
  return seen;
}
