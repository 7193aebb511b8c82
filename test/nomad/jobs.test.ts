import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startNomadDouble, type NomadDouble } from "../../src/sandbox/nomad/index.js";
import type { Allocation, Deployment, Evaluation, Job, JobSummary } from "../../src/sandbox/nomad/types.js";
import type { AllocationListStub } from "../../src/sandbox/nomad/serialize.js";
import { NomadApi } from "./api.js";

let nomad: NomadDouble;
let api: NomadApi;

beforeEach(async () => {
  nomad = await startNomadDouble({ now: () => Date.UTC(2026, 2, 1, 12) });
  api = new NomadApi(nomad.url);
});

afterEach(() => nomad.close());

const allocations = async (job: string) =>
  (await api.get<AllocationListStub[]>(`/v1/job/${job}/allocations`)).body;
const deployment = async (job: string) => (await api.get<Deployment>(`/v1/job/${job}/deployment`)).body;
const readJob = async (job: string) => (await api.get<Job>(`/v1/job/${job}`)).body;
const live = (allocs: AllocationListStub[]) =>
  allocs.filter((a) => a.DesiredStatus === "run" && a.ClientStatus === "running");

describe("registering a job", () => {
  it("evaluates, places on nodes with room, runs the tasks and completes the deployment", async () => {
    const registered = await api.run("web.hcl");
    await nomad.settle();

    const evaluation = (await api.get<Evaluation>(`/v1/evaluation/${registered.EvalID}`)).body;
    expect(evaluation).toMatchObject({
      Status: "complete",
      TriggeredBy: "job-register",
      JobID: "web",
      Type: "service",
    });

    const allocs = await allocations("web");
    expect(allocs.map((a) => a.Name).sort()).toEqual(["web.api[0]", "web.front[0]", "web.front[1]"]);
    for (const alloc of allocs) {
      expect(alloc).toMatchObject({
        ClientStatus: "running",
        DesiredStatus: "run",
        ClientDescription: "Tasks are running",
      });
      expect(alloc.CreateTime).toBeGreaterThan(1.7e18);
      const state = Object.values(alloc.TaskStates ?? {})[0];
      expect(state?.Events.map((e) => e.Type)).toEqual(["Received", "Task Setup", "Driver", "Started"]);
      expect(state?.StartedAt).toMatch(/^2026-03-01T12:00:00(\.\d+)?Z$/);
      expect(state?.FinishedAt).toBeNull();
      expect(alloc.DeploymentStatus?.Healthy).toBe(true);
    }
    // The two front instances are spread over two nodes (job anti-affinity).
    const fronts = allocs.filter((a) => a.TaskGroup === "front");
    expect(new Set(fronts.map((a) => a.NodeID)).size).toBe(2);

    const d = await deployment("web");
    expect(d).toMatchObject({
      Status: "successful",
      StatusDescription: "Deployment completed successfully",
      JobVersion: 0,
    });
    expect(d.TaskGroups.front).toMatchObject({
      DesiredTotal: 2,
      PlacedAllocs: 2,
      HealthyAllocs: 2,
      UnhealthyAllocs: 0,
      ProgressDeadline: 600e9,
    });

    const job = await readJob("web");
    expect(job).toMatchObject({
      Status: "running",
      Version: 0,
      Stable: true,
      JobModifyIndex: registered.JobModifyIndex,
    });
    expect(job.Update).toMatchObject({ Stagger: 30e9, MaxParallel: 1, HealthCheck: "" });
    expect(job.Datacenters).toEqual(["dc1"]);

    const summary = (await api.get<JobSummary>("/v1/job/web/summary")).body;
    expect(summary.Summary).toMatchObject({
      front: { Running: 2, Starting: 0, Queued: 0 },
      api: { Running: 1 },
    });
    expect(nomad.jobs()).toEqual(["web"]);
  });

  it("plans a changed image as a field-level diff forcing a create/destroy update", async () => {
    const registered = await api.run("web.hcl");
    await nomad.settle();
    const next = await api.parse("web.hcl", 'image = "nginx:1.28"');
    const plan = await api.post<PlanBody>("/v1/job/web/plan", { Job: next, Diff: true });
    expect(plan.status).toBe(200);
    expect(plan.body.JobModifyIndex).toBe(registered.JobModifyIndex);
    expect(plan.body.Diff.Type).toBe("Edited");
    const front = plan.body.Diff.TaskGroups.find((g) => g.Name === "front");
    expect(front?.Type).toBe("Edited");
    expect(front?.Updates).toEqual({ "create/destroy update": 1, ignore: 1 });
    const nginx = front?.Tasks.find((t) => t.Name === "nginx");
    expect(nginx?.Annotations).toEqual(["forces create/destroy update"]);
    const config = nginx?.Objects?.find((o) => o.Name === "Config");
    expect(config?.Type).toBe("Edited");
    expect(config?.Fields).toContainEqual({
      Type: "Edited",
      Name: "image",
      Old: "nginx:1.27",
      New: "nginx:1.28",
      Annotations: null,
    });
    expect(config?.Fields).toContainEqual({
      Type: "None",
      Name: "ports[0]",
      Old: "http",
      New: "http",
      Annotations: null,
    });
    expect(plan.body.Annotations.DesiredTGUpdates.front).toMatchObject({
      DestructiveUpdate: 1,
      Ignore: 1,
      Place: 0,
    });
    expect(plan.body.FailedTGAllocs).toBeNull();
    // Planning writes nothing.
    expect((await readJob("web")).Version).toBe(0);
  });

  it("plans a new job as Added, and resources that cannot fit as FailedTGAllocs", async () => {
    const big = await api.parse("chat.hcl");
    const groups = big.TaskGroups as Job["TaskGroups"];
    const synapse = groups?.[0]?.Tasks[0];
    if (synapse !== undefined) synapse.Resources.CPU = 9000;
    const plan = await api.post<PlanBody>("/v1/job/chat/plan", { Job: big, Diff: true });
    expect(plan.body.Diff.Type).toBe("Added");
    expect(plan.body.Diff.TaskGroups.find((g) => g.Name === "element")?.Updates).toEqual({ create: 2 });
    expect(plan.body.Diff.TaskGroups[0]?.Tasks[0]?.Annotations).toEqual(["forces create"]);
    expect(plan.body.FailedTGAllocs?.synapse).toMatchObject({
      NodesEvaluated: 3,
      NodesExhausted: 3,
      DimensionExhausted: { cpu: 3 },
    });
    expect(plan.body.CreatedEvals?.[0]).toMatchObject({ Status: "blocked", TriggeredBy: "queued-allocs" });
    expect(plan.body.JobModifyIndex).toBe(0);
  });

  it("refuses a register with a stale JobModifyIndex (500, Nomad's message) and accepts the planned one", async () => {
    const first = await api.run("web.hcl");
    await nomad.settle();
    const next = await api.parse("web.hcl", 'image = "nginx:1.28"');
    const stale = await api.post("/v1/jobs", {
      Job: next,
      EnforceIndex: true,
      JobModifyIndex: first.JobModifyIndex - 1,
    });
    expect(stale.status).toBe(500);
    expect(stale.headers.get("content-type")).toBe("text/plain");
    expect(stale.text).toBe(
      `Enforcing job modify index ${first.JobModifyIndex - 1}: job exists with conflicting job modify index: ${first.JobModifyIndex}`,
    );
    const missing = await api.post("/v1/jobs", {
      Job: { ...next, ID: "nope" },
      EnforceIndex: true,
      JobModifyIndex: 5,
    });
    expect(missing.text).toBe("Enforcing job modify index 5: job does not exist");

    const plan = await api.post<PlanBody>("/v1/job/web/plan", { Job: next, Diff: false });
    const ok = await api.post<{ JobModifyIndex: number }>("/v1/jobs", {
      Job: next,
      EnforceIndex: true,
      JobModifyIndex: plan.body.JobModifyIndex,
    });
    expect(ok.status).toBe(200);
    await nomad.settle();

    const job = await readJob("web");
    expect(job).toMatchObject({ Version: 1, Stable: true, JobModifyIndex: ok.body.JobModifyIndex });
    const allocs = await allocations("web");
    const replaced = allocs.filter((a) => a.DesiredStatus === "stop");
    expect(replaced.map((a) => a.DesiredDescription)).toEqual([
      "alloc is being updated due to job update",
      "alloc is being updated due to job update",
    ]);
    expect(replaced.every((a) => a.ClientStatus === "complete")).toBe(true);
    const stopped = Object.values(replaced[0]?.TaskStates ?? {})[0];
    expect(stopped?.Events.slice(-3).map((e) => e.DisplayMessage)).toEqual([
      "Sent interrupt. Waiting 5s before force killing",
      "Exit Code: 0",
      "Task successfully killed",
    ]);
    expect(
      live(allocs)
        .map((a) => [a.Name, a.JobVersion])
        .sort(),
    ).toEqual([
      ["web.api[0]", 1],
      ["web.front[0]", 1],
      ["web.front[1]", 1],
    ]);
    const deployments = (await api.get<Deployment[]>("/v1/job/web/deployments")).body;
    expect(deployments.map((d) => [d.JobVersion, d.Status])).toEqual([
      [1, "successful"],
      [0, "successful"],
    ]);
  });

  it("lists versions newest first with their diffs, and reverts to an older spec as a new version", async () => {
    await api.run("web.hcl");
    await nomad.settle();
    await api.run("web.hcl", 'image = "nginx:1.28"');
    await nomad.settle();
    const versions = await api.get<VersionsBody>("/v1/job/web/versions?diffs=true");
    expect(versions.body.Versions.map((v) => [v.Version, v.Stable])).toEqual([
      [1, true],
      [0, true],
    ]);
    const change = versions.body.Diffs?.[0]?.TaskGroups?.find((g) => g.Name === "front")?.Tasks[0]
      ?.Objects?.[0];
    expect(change?.Fields?.find((f) => f.Name === "image")).toMatchObject({
      Old: "nginx:1.27",
      New: "nginx:1.28",
    });

    const wrongId = await api.post("/v1/job/web/revert", { JobID: "other", JobVersion: 0 });
    expect([wrongId.status, wrongId.text]).toEqual([400, "Job ID does not match"]);
    const enforce = await api.post("/v1/job/web/revert", {
      JobID: "web",
      JobVersion: 0,
      EnforcePriorVersion: 7,
    });
    expect([enforce.status, enforce.text]).toEqual([500, "Current job has version 1; enforcing version 7"]);
    const current = await api.post("/v1/job/web/revert", { JobID: "web", JobVersion: 1 });
    expect(current.text).toBe("can't revert to current version");

    const reverted = await api.post<{ EvalID: string; JobModifyIndex: number }>("/v1/job/web/revert", {
      JobID: "web",
      JobVersion: 0,
      EnforcePriorVersion: 1,
    });
    expect(reverted.status).toBe(200);
    await nomad.settle();
    const job = await readJob("web");
    expect(job.Version).toBe(2);
    expect(job.TaskGroups?.[0]?.Tasks[0]?.Config.image).toBe("nginx:1.27");
    expect(
      live(await allocations("web"))
        .filter((a) => a.TaskGroup === "front")
        .every((a) => a.JobVersion === 2),
    ).toBe(true);
  });

  it("keeps the HCL submission of each version", async () => {
    const job = await api.parse("web.hcl");
    await api.post("/v1/jobs", {
      Job: job,
      Submission: {
        Source: 'job "web" {}',
        Format: "hcl2",
        Variables: "",
        VariableFlags: { image: "nginx:1.27" },
      },
    });
    const submission = await api.get<Record<string, unknown>>("/v1/job/web/submission?version=0");
    expect(submission.body).toMatchObject({
      Source: 'job "web" {}',
      Format: "hcl2",
      JobID: "web",
      Version: 0,
      Namespace: "default",
    });
    expect((await api.get("/v1/job/web/submission?version=3")).text).toBe("job source not found");
    expect((await api.get("/v1/job/web/submission?version=x")).status).toBe(400);
  });
});

describe("scaling", () => {
  it("is refused while a deployment is active (a canary waiting for promotion), allowed after", async () => {
    await api.run("web.hcl");
    await nomad.settle();
    const canary = (await api.parse("web.hcl", 'image = "nginx:1.28"')) as unknown as Job;
    const front = canary.TaskGroups?.[0];
    if (front?.Update !== null && front?.Update !== undefined) front.Update.Canary = 1;
    await api.post("/v1/jobs", { Job: canary });
    await nomad.settle();

    const d = await deployment("web");
    expect(d).toMatchObject({
      Status: "running",
      StatusDescription: "Deployment is running but requires manual promotion",
      JobVersion: 1,
    });
    expect(d.TaskGroups.front).toMatchObject({ DesiredCanaries: 1, HealthyAllocs: 1, Promoted: false });
    expect(d.TaskGroups.front?.PlacedCanaries).toHaveLength(1);
    const canaryAlloc = (await allocations("web")).find((a) => a.DeploymentStatus?.Canary === true);
    expect(canaryAlloc?.JobVersion).toBe(1);

    const refused = await api.post("/v1/job/web/scale", { Count: 3, Target: { Group: "front" } });
    expect([refused.status, refused.text]).toEqual([400, "job scaling blocked due to active deployment"]);

    const mismatch = await api.post(`/v1/deployment/promote/${d.ID}`, { DeploymentID: "other", All: true });
    expect([mismatch.status, mismatch.text]).toEqual([400, "Deployment ID does not match"]);
    const promoted = await api.post<{ EvalID: string; DeploymentModifyIndex: number }>(
      `/v1/deployment/promote/${d.ID}`,
      { DeploymentID: d.ID, All: true },
    );
    expect(promoted.status).toBe(200);
    expect(promoted.body.EvalID).not.toBe("");
    await nomad.settle();
    expect(await deployment("web")).toMatchObject({ ID: d.ID, Status: "successful" });
    expect(
      live(await allocations("web"))
        .filter((a) => a.TaskGroup === "front")
        .map((a) => a.JobVersion),
    ).toEqual([1, 1]);

    const scaled = await api.post<{ EvalID: string; JobModifyIndex: number }>("/v1/job/web/scale", {
      Count: 3,
      Target: { Group: "front" },
      Message: "busy",
    });
    expect(scaled.status).toBe(200);
    await nomad.settle();
    expect(live(await allocations("web")).filter((a) => a.TaskGroup === "front")).toHaveLength(3);
    const status = await api.get<{
      TaskGroups: Record<
        string,
        { Desired: number; Running: number; Events: { Message: string; PreviousCount: number }[] }
      >;
    }>("/v1/job/web/scale");
    expect(status.body.TaskGroups.front).toMatchObject({
      Desired: 3,
      Running: 3,
      Events: [{ Message: "busy", PreviousCount: 2 }],
    });
    expect((await api.post("/v1/job/web/scale", { Count: 1, Target: { Group: "nope" } })).text).toBe(
      'task group "nope" specified for scaling does not exist in job',
    );
  });
});

describe("canaries", () => {
  it("with auto_promote, healthy canaries are promoted and the update completes", async () => {
    await api.run("web.hcl");
    await nomad.settle();
    const next = (await api.parse("web.hcl", 'image = "nginx:1.28"')) as unknown as Job;
    const update = next.TaskGroups?.[0]?.Update;
    if (update !== null && update !== undefined) Object.assign(update, { Canary: 1, AutoPromote: true });
    await api.post("/v1/jobs", { Job: next });
    await nomad.settle();
    const d = await deployment("web");
    expect(d).toMatchObject({ JobVersion: 1, Status: "successful" });
    expect(d.TaskGroups.front).toMatchObject({ Promoted: true, DesiredCanaries: 1, HealthyAllocs: 2 });
  });
});

describe("stopping", () => {
  it("stops a job as a new version, then purges it", async () => {
    await api.run("web.hcl");
    await nomad.settle();
    const stopped = await api.request<{ EvalID: string; JobModifyIndex: number }>("DELETE", "/v1/job/web");
    expect(stopped.status).toBe(200);
    await nomad.settle();
    const job = await readJob("web");
    expect(job).toMatchObject({ Stop: true, Status: "dead", Version: 1 });
    const allocs = await allocations("web");
    expect(allocs.every((a) => a.DesiredStatus === "stop" && a.ClientStatus === "complete")).toBe(true);
    expect(allocs[0]?.DesiredDescription).toBe("alloc not needed due to job update");
    const evaluation = (await api.get<Evaluation>(`/v1/evaluation/${stopped.body.EvalID}`)).body;
    expect(evaluation.TriggeredBy).toBe("job-deregister");

    const purged = await api.request("DELETE", "/v1/job/web?purge=true");
    expect(purged.status).toBe(200);
    const gone = await api.get("/v1/job/web");
    expect([gone.status, gone.text]).toEqual([404, "job not found"]);
    expect(nomad.jobs()).toEqual([]);
    expect((await api.request("DELETE", "/v1/job/web?purge=maybe")).status).toBe(500);
  });

  it("stops one allocation (migrate) and the scheduler replaces it", async () => {
    await api.run("chat.hcl");
    await nomad.settle();
    const [element] = (await allocations("chat")).filter((a) => a.TaskGroup === "element");
    const stop = await api.post<{ EvalID: string; Index: number }>(
      `/v1/allocation/${element?.ID ?? ""}/stop`,
    );
    expect(stop.status).toBe(200);
    expect(Object.keys(stop.body)).toEqual(["EvalID", "Index"]);
    await nomad.settle();
    const after = (await api.get<Allocation>(`/v1/allocation/${element?.ID ?? ""}`)).body;
    expect(after).toMatchObject({
      DesiredStatus: "stop",
      DesiredDescription: "alloc is being migrated",
      ClientStatus: "complete",
    });
    const replacement = (await allocations("chat")).find((a) => a.ID === after.NextAllocation);
    expect(replacement).toMatchObject({ Name: element?.Name, ClientStatus: "running" });
  });
});

describe("restarting", () => {
  it("restarts a task in place (POST /v1/client/allocation/:id/restart)", async () => {
    await api.run("chat.hcl");
    await nomad.settle();
    const synapse = (await allocations("chat")).find((a) => a.TaskGroup === "synapse");
    const restarted = await api.post(`/v1/client/allocation/${synapse?.ID ?? ""}/restart`, {
      TaskName: "synapse",
    });
    expect([restarted.status, restarted.text]).toEqual([200, ""]);
    await nomad.settle();
    const state = (await api.get<Allocation>(`/v1/allocation/${synapse?.ID ?? ""}`)).body.TaskStates?.synapse;
    expect(state).toMatchObject({ State: "running", Restarts: 1 });
    expect(state?.LastRestart).toMatch(/^2026-03-01T/);
    expect(state?.Events.slice(-4).map((e) => e.Type)).toEqual([
      "Restart Signaled",
      "Terminated",
      "Restarting",
      "Started",
    ]);
    expect(state?.Events.at(-4)?.DisplayMessage).toBe("User requested restart");
    const unknown = await api.post(`/v1/client/allocation/${synapse?.ID ?? ""}/restart`, {
      TaskName: "nope",
    });
    expect(unknown.status).toBe(500);
  });
});

interface PlanDiffTask {
  Name: string;
  Annotations: string[] | null;
  Objects:
    | {
        Name: string;
        Type: string;
        Fields: { Type: string; Name: string; Old: string; New: string; Annotations: null }[] | null;
      }[]
    | null;
}

interface PlanBody {
  JobModifyIndex: number;
  Diff: {
    Type: string;
    TaskGroups: {
      Name: string;
      Type: string;
      Updates: Record<string, number> | null;
      Tasks: PlanDiffTask[];
    }[];
  };
  Annotations: { DesiredTGUpdates: Record<string, Record<string, number>> };
  FailedTGAllocs: Record<string, Record<string, unknown>> | null;
  CreatedEvals: Evaluation[] | null;
}

interface VersionsBody {
  Versions: Job[];
  Diffs: { TaskGroups: { Name: string; Tasks: PlanDiffTask[] }[] | null }[] | null;
}
