import { describe, expect, it } from "vitest";
import { NomadRules, type NomadSnapshot } from "../../src/alerts/sources/nomad-rules.js";
import type { Signal } from "../../src/alerts/signal.js";
import type {
  Allocation,
  Deployment,
  JobListStub,
  NodeStub,
  NomadStreamEvent,
  TaskEvent,
  TaskState,
} from "../../src/backends/nomad/types.js";

/** Events shaped as on the wire (Topic/Type strings from nomad-enums.json, payload keys per topic). */

const T0 = Date.parse("2026-03-01T12:00:00Z");
const ns = (ms: number) => ms * 1e6;
const MIN = 60_000;

function taskEvent(
  type: string,
  atMs: number,
  details: Record<string, string> = {},
  display = "",
): TaskEvent {
  return { Type: type, Time: ns(atMs), Details: details, DisplayMessage: display };
}

const running = (...events: TaskEvent[]): TaskState => ({
  State: "running",
  Failed: false,
  Restarts: 0,
  Events: events,
});

function alloc(id: string, fields: Partial<Allocation> = {}): Allocation {
  return {
    ID: id,
    Name: "web.web[0]",
    Namespace: "default",
    NodeID: "node-id-1",
    NodeName: "node-1",
    JobID: "web",
    TaskGroup: "web",
    DesiredStatus: "run",
    ClientStatus: "running",
    DeploymentID: "",
    TaskStates: { web: running(taskEvent("Started", T0 - MIN)) },
    CreateIndex: 10,
    ModifyIndex: 10,
    ...fields,
  };
}

let nextIndex = 100;
function event(
  topic: string,
  type: string,
  key: string,
  payload: Record<string, unknown>,
  index = nextIndex++,
): NomadStreamEvent {
  return {
    Topic: topic,
    Type: type,
    Key: key,
    Namespace: "default",
    FilterKeys: null,
    Index: index,
    Payload: payload,
  };
}

const allocEvent = (a: Allocation, index?: number) =>
  event("Allocation", "AllocationUpdated", a.ID, { Allocation: { ...a, ModifyIndex: index } }, index);

function node(fields: Partial<NodeStub> & Record<string, unknown> = {}): NodeStub {
  return {
    ID: "node-id-1",
    Name: "node-1",
    Datacenter: "dc1",
    Status: "ready",
    SchedulingEligibility: "eligible",
    Drain: false,
    ...fields,
  };
}

const nodeEvent = (type: string, n: NodeStub) => event("Node", type, n.ID, { Node: n });

function job(fields: Partial<JobListStub> = {}): JobListStub {
  return {
    ID: "web",
    Name: "web",
    Namespace: "default",
    Type: "service",
    Status: "running",
    Stop: false,
    ...fields,
  };
}

const jobEvent = (type: string, j: JobListStub) => event("Job", type, j.ID, { Job: j });

function deployment(id: string, status: string, version = 1): Deployment {
  return {
    ID: id,
    Namespace: "default",
    JobID: "web",
    JobVersion: version,
    Status: status,
    StatusDescription:
      status === "failed" ? "Failed due to unhealthy allocations" : "Deployment completed successfully",
    TaskGroups: null,
  };
}

const deploymentEvent = (d: Deployment) =>
  event("Deployment", "DeploymentStatusUpdate", d.ID, { Deployment: d });

const brief = (signals: readonly Signal[]) =>
  signals.map(
    (s) =>
      `${s.kind} ${s.status} ${s.subject.alloc ?? s.subject.deployment ?? s.subject.node ?? s.subject.job}`,
  );

describe("allocation rules", () => {
  it("a failed allocation fires once with the driver's error, and a later healthy one resolves it", () => {
    const rules = new NomadRules();
    const pullError = "Failed to pull `nginx:nope`: manifest unknown";
    const failed = alloc("a-failed", {
      ClientStatus: "failed",
      CreateIndex: 20,
      TaskStates: {
        web: {
          State: "dead",
          Failed: true,
          Restarts: 0,
          Events: [
            taskEvent("Received", T0),
            {
              ...taskEvent("Driver Failure", T0 + 1000, { driver_error: pullError }, pullError),
              DriverError: pullError,
            },
          ],
        },
      },
    });
    const fired = rules.onEvent(allocEvent(failed), T0 + 2000);
    expect(brief(fired)).toEqual(["alloc-failed firing a-failed"]);
    expect(fired[0]?.reason).toContain(pullError);
    expect(fired[0]?.subject).toEqual({
      job: "web",
      group: "web",
      alloc: "a-failed",
      node: "node-1",
      nodeId: "node-id-1",
    });
    // The same failed allocation updated again (e.g. its reschedule tracker) does not fire again.
    expect(rules.onEvent(allocEvent(failed), T0 + 3000)).toEqual([]);
    // An older healthy allocation of the group does not mean it recovered…
    expect(rules.onEvent(allocEvent(alloc("a-old", { CreateIndex: 5 })), T0 + 4000)).toEqual([]);
    // …a later one does.
    const resolved = rules.onEvent(allocEvent(alloc("a-new", { CreateIndex: 30 })), T0 + 5000);
    expect(brief(resolved)).toEqual(["alloc-failed resolved a-failed"]);
    expect(resolved[0]?.reason).toContain("a-new".slice(0, 8));
  });

  it("says the exit code and the restart verdict of a task that gave up, and fires not-restarting", () => {
    const rules = new NomadRules();
    const verdict = 'Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"';
    const failed = alloc("a-crash", {
      ClientStatus: "failed",
      TaskStates: {
        web: {
          State: "dead",
          Failed: true,
          Restarts: 2,
          Events: [
            taskEvent("Terminated", T0, { exit_code: "3", signal: "0", oom_killed: "false" }),
            taskEvent("Not Restarting", T0, { restart_reason: verdict, fails_task: "true" }, verdict),
          ],
        },
      },
    });
    const signals = rules.onEvent(allocEvent(failed), T0 + 1);
    expect(brief(signals)).toEqual(["alloc-not-restarting firing a-crash", "alloc-failed firing a-crash"]);
    expect(signals[1]?.reason).toBe(`task "web": exit code 3; ${verdict}`);
  });

  it("a lost allocation fires alloc-lost, resolved by its healthy replacement", () => {
    const rules = new NomadRules();
    const lost = alloc("a-lost", {
      ClientStatus: "lost",
      ClientDescription: "alloc is lost since its node is down",
    });
    expect(brief(rules.onEvent(allocEvent(lost), T0))).toEqual(["alloc-lost firing a-lost"]);
    const replacement = alloc("a-repl", { CreateIndex: 40, NodeName: "node-2" });
    expect(brief(rules.onEvent(allocEvent(replacement), T0 + 1))).toEqual(["alloc-lost resolved a-lost"]);
  });

  it("an OOM kill (Terminated with oom_killed) fires alloc-oom; the task running again resolves it", () => {
    const rules = new NomadRules();
    const oom = taskEvent("Terminated", T0, { exit_code: "137", signal: "0", oom_killed: "true" });
    const restarting = taskEvent("Restarting", T0, { restart_reason: "Restart within policy" });
    const killed = alloc("a-oom", {
      TaskStates: {
        web: {
          State: "pending",
          Failed: false,
          Restarts: 1,
          Events: [taskEvent("Started", T0 - MIN), oom, restarting],
        },
      },
    });
    const fired = rules.onEvent(allocEvent(killed), T0 + 1);
    expect(brief(fired)).toEqual(["alloc-oom firing a-oom"]);
    expect(fired[0]?.reason).toBe('task "web" was OOM-killed (exit code 137)');
    const back = alloc("a-oom", {
      TaskStates: {
        web: running(taskEvent("Started", T0 - MIN), oom, restarting, taskEvent("Started", T0 + 15_000)),
      },
    });
    expect(brief(rules.onEvent(allocEvent(back), T0 + 16_000))).toEqual(["alloc-oom resolved a-oom"]);
  });

  it("a second OOM kill of the same allocation fires again, even one logged at the same nanosecond", () => {
    const rules = new NomadRules();
    const started = taskEvent("Started", T0);
    const oomAt = (ms: number) => taskEvent("Terminated", ms, { exit_code: "137", oom_killed: "true" });
    const states = (...events: TaskEvent[]) => alloc("a-oom", { TaskStates: { web: running(...events) } });
    const steps: Array<[TaskEvent[], string[]]> = [
      [[started, oomAt(T0 + 1000)], ["alloc-oom firing a-oom"]],
      [[started, oomAt(T0 + 1000), taskEvent("Started", T0 + 2000)], ["alloc-oom resolved a-oom"]],
      // The same update again: nothing new.
      [[started, oomAt(T0 + 1000), taskEvent("Started", T0 + 2000)], []],
      // Killed again at the very nanosecond it started: a new event all the same.
      [
        [started, oomAt(T0 + 1000), taskEvent("Started", T0 + 2000), oomAt(T0 + 2000)],
        ["alloc-oom firing a-oom"],
      ],
    ];
    for (const [i, [events, expected]] of steps.entries())
      expect(brief(rules.onEvent(allocEvent(states(...events)), T0 + 3000 + i)), `step ${i}`).toEqual(
        expected,
      );
    expect(rules.sizes().open).toBe(1);
  });

  it("fires a restart loop only for more than K crash restarts within the window", () => {
    const rules = new NomadRules({ restartLoopCount: 2, restartLoopWindowMs: 10 * MIN });
    const events: TaskEvent[] = [];
    const update = (atMs: number, ...added: TaskEvent[]) => {
      events.push(...added);
      return rules.onEvent(allocEvent(alloc("a-loop", { TaskStates: { web: running(...events) } })), atMs);
    };
    const crash = (atMs: number) => [
      taskEvent("Terminated", atMs, { exit_code: "1", oom_killed: "false" }),
      taskEvent("Restarting", atMs, { restart_reason: "Restart within policy" }),
    ];
    // Spread out: never more than 2 within 10 minutes.
    expect(update(T0, ...crash(T0))).toEqual([]);
    expect(update(T0 + 6 * MIN, ...crash(T0 + 6 * MIN))).toEqual([]);
    expect(update(T0 + 12 * MIN, ...crash(T0 + 12 * MIN))).toEqual([]);
    // A restart someone asked for is not a crash.
    const asked = [taskEvent("Restart Signaled", T0 + 13 * MIN), ...crash(T0 + 13 * MIN)];
    expect(update(T0 + 13 * MIN, ...asked, taskEvent("Started", T0 + 13 * MIN + 1))).toEqual([]);
    // The third crash within 10 minutes (6, 12, 14) fires, with the last exit.
    const fired = update(T0 + 14 * MIN, ...crash(T0 + 14 * MIN));
    expect(brief(fired)).toEqual(["alloc-restart-loop firing a-loop"]);
    expect(fired[0]?.reason).toBe('task "web" restarted 3 times within 10 min: last exit code 1');
    // Quiet for longer than the window and healthy: resolved.
    expect(brief(update(T0 + 30 * MIN, taskEvent("Started", T0 + 30 * MIN)))).toEqual([
      "alloc-restart-loop resolved a-loop",
    ]);
  });

  it("does not call old restarts replayed from an allocation's history a loop", () => {
    const rules = new NomadRules({ restartLoopCount: 1, restartLoopWindowMs: 10 * MIN });
    const history = [T0, T0 + 1000, T0 + 2000].flatMap((t) => [
      taskEvent("Terminated", t, { exit_code: "1" }),
      taskEvent("Restarting", t),
    ]);
    const a = alloc("a-history", { TaskStates: { web: running(...history) } });
    expect(rules.onEvent(allocEvent(a), T0 + 3 * 3600_000)).toEqual([]);
  });

  it("keeps the restart trackers bounded", () => {
    const rules = new NomadRules({ maxTrackedAllocs: 3 });
    for (let i = 0; i < 20; i++) rules.onEvent(allocEvent(alloc(`a-${i}`)), T0);
    expect(rules.sizes()).toMatchObject({ trackedAllocs: 3 });
  });

  it("ignores an event older than one already processed (a stale replay)", () => {
    const rules = new NomadRules();
    const failed = allocEvent(alloc("a-f", { ClientStatus: "failed", CreateIndex: 20 }), 300);
    expect(brief(rules.onEvent(failed, T0))).toEqual(["alloc-failed firing a-f"]);
    const replacement = allocEvent(alloc("a-r", { CreateIndex: 21 }), 301);
    expect(brief(rules.onEvent(replacement, T0 + 1))).toEqual(["alloc-failed resolved a-f"]);
    expect(rules.onEvent(failed, T0 + 2)).toEqual([]);
    expect(rules.openConditions()).toEqual([]);
  });
});

describe("deployment, job and node rules", () => {
  it("a failed deployment fires; a later successful one of the job resolves it", () => {
    const rules = new NomadRules();
    const failed = rules.onEvent(deploymentEvent(deployment("d-1", "failed")), T0);
    expect(brief(failed)).toEqual(["deployment-failed firing d-1"]);
    expect(failed[0]?.reason).toBe("deployment of web version 1 failed: Failed due to unhealthy allocations");
    expect(rules.onEvent(deploymentEvent(deployment("d-2", "running", 2)), T0 + 1)).toEqual([]);
    expect(brief(rules.onEvent(deploymentEvent(deployment("d-2", "successful", 2)), T0 + 2))).toEqual([
      "deployment-failed resolved d-1",
    ]);
  });

  it("a service job dead without a stop fires job-dead; a finished batch job or a stopped one does not", () => {
    const rules = new NomadRules();
    expect(brief(rules.onEvent(jobEvent("AllocationUpdated", job({ Status: "dead" })), T0))).toEqual([
      "job-dead firing web",
    ]);
    expect(brief(rules.onEvent(jobEvent("JobRegistered", job({ Status: "running" })), T0 + 1))).toEqual([
      "job-dead resolved web",
    ]);
    const batch = job({ ID: "report", Type: "batch", Status: "dead" });
    expect(rules.onEvent(jobEvent("AllocationUpdated", batch), T0 + 2)).toEqual([]);
    const stopped = job({ ID: "old", Status: "dead", Stop: true });
    expect(rules.onEvent(jobEvent("JobDeregistered", stopped), T0 + 3)).toEqual([]);
  });

  it("stopping a job resolves what was open about it", () => {
    const rules = new NomadRules();
    rules.onEvent(allocEvent(alloc("a-f", { ClientStatus: "failed" })), T0);
    rules.onEvent(deploymentEvent(deployment("d-9", "failed")), T0);
    const resolved = rules.onEvent(jobEvent("JobDeregistered", job({ Status: "dead", Stop: true })), T0 + 1);
    expect(brief(resolved).sort()).toEqual(["alloc-failed resolved a-f", "deployment-failed resolved d-9"]);
  });

  it("node down and back (NodeStreamEvent), drain set and over (NodeDrain), ineligible and eligible", () => {
    const rules = new NomadRules();
    const down = rules.onEvent(
      nodeEvent(
        "NodeStreamEvent",
        node({ Status: "down", Events: [{ Message: "Node heartbeat missed" }] } as Partial<NodeStub>),
      ),
      T0,
    );
    expect(brief(down)).toEqual(["node-down firing node-1"]);
    expect(down[0]?.reason).toBe("node node-1 is down: Node heartbeat missed");
    expect(down[0]?.subject).toEqual({ node: "node-1", nodeId: "node-id-1" });
    expect(brief(rules.onEvent(nodeEvent("NodeStreamEvent", node()), T0 + 1))).toEqual([
      "node-down resolved node-1",
    ]);
    // A drain makes the node ineligible: said once, as a drain.
    const draining = node({
      Drain: true,
      SchedulingEligibility: "ineligible",
      DrainStrategy: { DrainSpec: { Deadline: 0 } },
    } as Partial<NodeStub>);
    expect(brief(rules.onEvent(nodeEvent("NodeDrain", draining), T0 + 2))).toEqual([
      "node-draining firing node-1",
    ]);
    // The drain completes; the node stays ineligible until someone marks it eligible.
    const drained = node({
      SchedulingEligibility: "ineligible",
      LastDrain: { Status: "complete" },
    } as Partial<NodeStub>);
    expect(brief(rules.onEvent(nodeEvent("NodeDrain", drained), T0 + 3))).toEqual([
      "node-draining resolved node-1",
      "node-ineligible firing node-1",
    ]);
    expect(brief(rules.onEvent(nodeEvent("NodeDrain", node()), T0 + 4))).toEqual([
      "node-ineligible resolved node-1",
    ]);
  });
});

describe("identity and memory", () => {
  it("signal ids come from the event's Index, Topic, Key and Type; a replayed event gives nothing", () => {
    const rules = new NomadRules();
    const e = event("Node", "NodeStreamEvent", "node-id-1", { Node: node({ Status: "down" }) }, 500);
    const [signal] = rules.onEvent(e, T0);
    expect(signal?.id).toBe("nomad/500/Node/node-id-1/NodeStreamEvent/firing/node-down/-/node-id-1");
    expect(rules.onEvent(e, T0 + 1)).toEqual([]);
    // Another instance seeing the same event names it the same way (the engine drops duplicates).
    expect(new NomadRules().onEvent(e, T0 + 2)[0]?.id).toBe(signal?.id);
  });

  it("a restored state resolves what was reported before the restart", () => {
    const before = new NomadRules();
    before.onEvent(allocEvent(alloc("a-f", { ClientStatus: "failed", CreateIndex: 20 })), T0);
    const after = new NomadRules({}, JSON.parse(JSON.stringify(before.exportState())));
    expect(after.openConditions().map((c) => c.key)).toEqual(["alloc-failed/default/a-f"]);
    expect(brief(after.onEvent(allocEvent(alloc("a-n", { CreateIndex: 21 })), T0 + 1))).toEqual([
      "alloc-failed resolved a-f",
    ]);
  });
});

describe("reconcile after a gap", () => {
  const snapshot = (parts: Partial<NomadSnapshot>): NomadSnapshot => ({
    allocations: [],
    nodes: [node()],
    deployments: [],
    jobs: [job()],
    index: 1000,
    ...parts,
  });

  it("on a first start reports only what is wrong now, not the history", () => {
    const rules = new NomadRules();
    const signals = rules.reconcile(
      snapshot({
        allocations: [
          alloc("a-old-failed", { ClientStatus: "failed", CreateIndex: 10, ModifyIndex: 12 }),
          alloc("a-replacement", { CreateIndex: 13, ModifyIndex: 14 }),
          alloc("a-other-failed", {
            TaskGroup: "db",
            ClientStatus: "failed",
            CreateIndex: 15,
            ModifyIndex: 16,
          }),
        ],
      }),
      { at: T0, changedAfter: undefined, seenUntil: 0 },
    );
    expect(brief(signals)).toEqual(["alloc-failed firing a-other-failed"]);
    expect(signals[0]?.id).toBe(
      "nomad-sync/16/Allocation/a-other-failed/firing/alloc-failed/default/a-other-failed",
    );
  });

  it("reports what happened during the gap even if it recovered since, and nothing seen before", () => {
    const rules = new NomadRules();
    const signals = rules.reconcile(
      snapshot({
        allocations: [
          // Failed and replaced before the gap (index 500): seen then, not again.
          alloc("a-before", { ClientStatus: "failed", CreateIndex: 100, ModifyIndex: 110 }),
          alloc("a-ok", { CreateIndex: 120, ModifyIndex: 130 }),
          // Failed and replaced during the gap.
          alloc("a-gap", { ClientStatus: "failed", CreateIndex: 600, ModifyIndex: 610 }),
          alloc("a-gap-repl", { CreateIndex: 620, ModifyIndex: 630 }),
        ],
        nodes: [node({ Status: "down", ModifyIndex: 700 })],
      }),
      { at: T0, changedAfter: 500, seenUntil: T0 - MIN },
    );
    expect(brief(signals)).toEqual([
      "node-down firing node-1",
      "alloc-failed firing a-gap",
      "alloc-failed resolved a-gap",
    ]);
  });

  it("resolves what recovered or disappeared while disconnected", () => {
    const rules = new NomadRules();
    rules.onEvent(
      nodeEvent("NodeStreamEvent", node({ ID: "node-id-2", Name: "node-2", Status: "down" })),
      T0,
    );
    rules.onEvent(allocEvent(alloc("a-gone", { ClientStatus: "failed" }), 300), T0);
    rules.onEvent({ ...jobEvent("AllocationUpdated", job({ ID: "cron", Status: "dead" })), Index: 301 }, T0);
    const signals = rules.reconcile(snapshot({ nodes: [node({ ModifyIndex: 900 })] }), {
      at: T0 + MIN,
      changedAfter: 400,
      seenUntil: T0,
    });
    expect(brief(signals).sort()).toEqual([
      "alloc-failed resolved a-gone",
      "job-dead resolved cron",
      "node-down resolved node-2",
    ]);
    expect(rules.openConditions()).toEqual([]);
  });
});
