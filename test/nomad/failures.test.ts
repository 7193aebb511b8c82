import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startNomadDouble, type NomadDouble } from "../../src/sandbox/nomad/index.js";
import type { Allocation, Deployment, Job, TaskEvent } from "../../src/sandbox/nomad/types.js";
import type { AllocationListStub } from "../../src/sandbox/nomad/serialize.js";
import { NomadApi } from "./api.js";

let nomad: NomadDouble;
let api: NomadApi;

beforeEach(async () => {
  nomad = await startNomadDouble();
  api = new NomadApi(nomad.url);
});

afterEach(() => nomad.close());

const allocations = async (job: string) =>
  (await api.get<AllocationListStub[]>(`/v1/job/${job}/allocations`)).body;
const deployment = async (job: string) => (await api.get<Deployment>(`/v1/job/${job}/deployment`)).body;
const events = (alloc: Pick<Allocation, "TaskStates"> | undefined, task: string): TaskEvent[] =>
  alloc?.TaskStates?.[task]?.Events ?? [];
const logs = async (alloc: { ID: string } | undefined, task: string, type: "stdout" | "stderr") =>
  (await api.get<string>(`/v1/client/fs/logs/${alloc?.ID ?? ""}?task=${task}&type=${type}&plain=true`)).text;

describe("failure kinds", () => {
  it("image-pull: Driver Failure with Failed to pull, restarts, then the deployment fails and rolls back", async () => {
    await api.run("web.hcl");
    await nomad.settle();
    await api.run("web-bad-image.hcl");
    await nomad.settle();

    const failed = (await allocations("web")).find((a) => a.JobVersion === 1 && a.TaskGroup === "front");
    expect(failed).toMatchObject({ ClientStatus: "failed", ClientDescription: "Failed tasks" });
    expect(failed?.DeploymentStatus?.Healthy).toBe(false);
    const types = events(failed, "nginx").map((e) => e.Type);
    expect(types).toEqual([
      "Received",
      "Task Setup",
      "Driver",
      "Driver Failure",
      "Restarting",
      "Driver",
      "Driver Failure",
      "Restarting",
      "Driver",
      "Driver Failure",
      "Not Restarting",
    ]);
    const pull = events(failed, "nginx").find((e) => e.Type === "Driver Failure");
    expect(pull?.DriverError).toBe(
      "Failed to pull `nginx:1.27-does-not-exist`: Error response from daemon: manifest for nginx:1.27-does-not-exist not found: manifest unknown: manifest unknown",
    );
    expect(pull?.DisplayMessage).toBe(pull?.DriverError);
    expect(events(failed, "nginx").at(-1)).toMatchObject({
      FailsTask: true,
      DisplayMessage: 'Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"',
    });
    expect(failed?.TaskStates?.nginx).toMatchObject({ State: "dead", Failed: true, Restarts: 2 });
    // The container never started: nothing in its logs.
    expect(await logs(failed, "nginx", "stderr")).toBe("");

    const deployments = (await api.get<Deployment[]>("/v1/job/web/deployments")).body;
    expect(deployments.find((d) => d.JobVersion === 1)).toMatchObject({
      Status: "failed",
      StatusDescription: "Failed due to unhealthy allocations - rolling back to job version 0",
    });
    const job = (await api.get<Job>("/v1/job/web")).body;
    expect(job.Version).toBe(2);
    expect(job.TaskGroups?.[0]?.Tasks[0]?.Config.image).toBe("nginx:1.27");
    // The failed allocation is not rescheduled (it belongs to a failed deployment); the rollback
    // places version 2 in its slot.
    expect(failed?.NextAllocation).toBe("");
    const running = (await allocations("web")).filter(
      (a) => a.ClientStatus === "running" && a.DesiredStatus === "run",
    );
    expect(running.map((a) => [a.Name, a.JobVersion]).sort()).toEqual([
      ["web.api[0]", 2],
      ["web.front[0]", 2],
      ["web.front[1]", 2],
    ]);
    expect(await deployment("web")).toMatchObject({ JobVersion: 2, Status: "successful" });
  });

  it("crash-loop: Terminated with exit code 1, Restarting, then Not Restarting", async () => {
    nomad.failNextPlacement("chat", "element", "crash-loop");
    await api.run("chat.hcl");
    await nomad.settle();
    const element = (await allocations("chat")).find((a) => a.TaskGroup === "element");
    const terminated = events(element, "element").filter((e) => e.Type === "Terminated");
    expect(terminated).toHaveLength(3);
    expect(terminated[0]).toMatchObject({
      ExitCode: 1,
      DisplayMessage: 'Exit Code: 1, Exit Message: "Docker container exited with non-zero exit code: 1"',
      Details: {
        exit_code: "1",
        signal: "0",
        oom_killed: "false",
        exit_message: "Docker container exited with non-zero exit code: 1",
      },
    });
    const restarting = events(element, "element").find((e) => e.Type === "Restarting");
    expect(restarting).toMatchObject({
      DisplayMessage: "Task restarting in 15s",
      RestartReason: "Restart within policy",
      StartDelay: 15e9,
    });
    expect(events(element, "element").at(-1)?.Type).toBe("Not Restarting");
    expect(element?.ClientStatus).toBe("failed");
    expect(await logs(element, "element", "stderr")).toContain("could not connect to database");
    expect(await deployment("chat")).toMatchObject({
      Status: "failed",
      StatusDescription: "Failed due to unhealthy allocations",
    });
    // Other groups are unaffected.
    expect((await allocations("chat")).find((a) => a.TaskGroup === "synapse")?.ClientStatus).toBe("running");
  });

  it("oom: Terminated with oom_killed true and exit code 137", async () => {
    nomad.failNextPlacement("chat", "synapse", "oom");
    await api.run("chat.hcl");
    await nomad.settle();
    const synapse = (await allocations("chat")).find((a) => a.TaskGroup === "synapse");
    const oom = events(synapse, "synapse").find((e) => e.Type === "Terminated");
    expect(oom).toMatchObject({
      ExitCode: 137,
      Message: "OOM Killed",
      DisplayMessage: 'Exit Code: 137, Exit Message: "OOM Killed"',
    });
    expect(oom?.Details.oom_killed).toBe("true");
    expect(await logs(synapse, "synapse", "stderr")).toContain("fatal error: runtime: out of memory");
    expect(synapse?.ClientStatus).toBe("failed");
  });

  it("unhealthy: running but never healthy, so the deployment fails", async () => {
    nomad.failNextPlacement("chat", "element", "unhealthy");
    await api.run("chat.hcl");
    await nomad.settle();
    const element = (await allocations("chat")).find((a) => a.TaskGroup === "element");
    expect(element?.ClientStatus).toBe("running");
    expect(element?.DeploymentStatus?.Healthy).toBe(false);
    expect(await logs(element, "element", "stderr")).toContain("health check GET /health returned 503");
    const d = await deployment("chat");
    expect(d).toMatchObject({ Status: "failed", StatusDescription: "Failed due to unhealthy allocations" });
    expect(d.TaskGroups.element?.UnhealthyAllocs).toBeGreaterThan(0);
  });

  it("clearFailures: the next placements run normally again", async () => {
    nomad.failNextPlacement("chat", "element", "crash-loop");
    nomad.clearFailures("chat");
    await api.run("chat.hcl");
    await nomad.settle();
    expect(await deployment("chat")).toMatchObject({ Status: "successful" });
  });
});

describe("failures of running allocations", () => {
  it("oomKill: the task is OOM-killed once and restarted by its policy", async () => {
    await api.run("chat.hcl");
    await nomad.settle();
    nomad.oomKill("chat");
    await nomad.settle();
    const first = (await allocations("chat")).sort((a, b) => (a.Name < b.Name ? -1 : 1))[0];
    const task = Object.keys(first?.TaskStates ?? {})[0] ?? "";
    expect(first?.ClientStatus).toBe("running");
    expect(first?.TaskStates?.[task]).toMatchObject({ State: "running", Restarts: 1 });
    expect(
      events(first, task)
        .slice(-3)
        .map((e) => e.Type),
    ).toEqual(["Terminated", "Restarting", "Started"]);
    expect(events(first, task).at(-3)?.Details.oom_killed).toBe("true");
  });

  it("failAllocation: the task keeps failing, the allocation fails and is rescheduled elsewhere", async () => {
    await api.run("chat.hcl");
    await nomad.settle();
    const synapse = (await allocations("chat")).find((a) => a.TaskGroup === "synapse");
    nomad.failAllocation(synapse?.ID.slice(0, 8) ?? "", 2);
    await nomad.settle();
    const after = (await api.get<Allocation>(`/v1/allocation/${synapse?.ID ?? ""}`)).body;
    expect(after).toMatchObject({
      ClientStatus: "failed",
      DesiredStatus: "stop",
      DesiredDescription: "alloc was rescheduled because it failed",
    });
    expect(events(after, "synapse").find((e) => e.Type === "Terminated")?.ExitCode).toBe(2);
    const replacement = (await api.get<Allocation>(`/v1/allocation/${after.NextAllocation}`)).body;
    expect(replacement).toMatchObject({
      Name: "chat.synapse[0]",
      ClientStatus: "running",
      PreviousAllocation: synapse?.ID,
    });
    expect(replacement.RescheduleTracker?.Events[0]).toMatchObject({
      PrevAllocID: synapse?.ID,
      PrevNodeID: synapse?.NodeID,
      Delay: 30e9,
    });
  });

  it("refuses controls naming nothing running", () => {
    expect(() => nomad.oomKill("nope")).toThrow(/no running allocation or job "nope"/);
  });
});

describe("logs", () => {
  it("serves plain text, and JSON frames without plain=true; offsets from the end", async () => {
    await api.run("chat.hcl");
    await nomad.settle();
    const synapse = (await allocations("chat")).find((a) => a.TaskGroup === "synapse");
    const stdout = await logs(synapse, "synapse", "stdout");
    expect(stdout).toContain("synapse: starting (image matrixdotorg/synapse:v1.120.0)");
    const tail = await api.get<string>(
      `/v1/client/fs/logs/${synapse?.ID ?? ""}?task=synapse&type=stdout&origin=end&offset=10&plain=true`,
    );
    expect(tail.text).toBe(stdout.slice(-10));
    const framed = await api.get<{ Data: string; File: string; Offset: number }>(
      `/v1/client/fs/logs/${synapse?.ID ?? ""}?task=synapse&type=stdout`,
    );
    expect(Buffer.from(framed.body.Data, "base64").toString()).toBe(stdout);
    expect(framed.body.File).toBe("alloc/logs/synapse.stdout.0");
    const noTask = await api.get(`/v1/client/fs/logs/${synapse?.ID ?? ""}?type=stdout`);
    expect([noTask.status, noTask.text]).toEqual([400, "must provide task name"]);
  });
});
