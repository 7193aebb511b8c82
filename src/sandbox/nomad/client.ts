import { rfc3339 } from "./clock.js";
import { STEPS, type Cluster } from "./cluster.js";
import { refreshDeploymentCounts } from "./deployment-counts.js";
import { crashLines, oomLines, startupLines, stopLines, unhealthyLines } from "./logs.js";
import { newEval } from "./objects.js";
import { isLive } from "./reconcile.js";
import type { Txn } from "./store.js";
import {
  driverFailure,
  driverMessage,
  exceededReason,
  killed,
  killing,
  notRestarting,
  REASON_DELAY,
  REASON_WITHIN_POLICY,
  received,
  restarting,
  restartSignaled,
  started,
  taskSetup,
  terminated,
} from "./task-events.js";
import type { Allocation, FailureKind, Task, TaskState } from "./types.js";

/**
 * The Nomad clients of the simulated nodes: run allocations step by step (received, image pulled,
 * started, healthy), fail them the way they were set up to, restart tasks by their restart policy,
 * kill what the scheduler stops. Each step is one client update (raft type AllocationUpdated).
 */
export class ClientSim {
  /** The failure each allocation was placed with (decided when its client receives it). */
  private readonly failures = new Map<
    string,
    {
      kind: FailureKind;
      exitCode: number;
      /** Crashes still to come (undefined: until the restart policy gives up). */
      remaining?: number;
    }
  >();

  constructor(private readonly cluster: Cluster) {}

  start(allocId: string): void {
    this.cluster.ticker.after(1, () => this.receive(allocId));
  }

  kill(allocId: string): void {
    this.cluster.ticker.after(1, () => this.stopTasks(allocId));
  }

  /** A user restart (POST /v1/client/allocation/:id/restart). */
  restart(allocId: string, tasks: readonly string[]): void {
    const now = this.cluster.clock.nowNs();
    this.update(allocId, (alloc) => {
      for (const name of tasks) {
        const state = alloc.TaskStates?.[name];
        if (state?.State !== "running") continue;
        state.Events.push(
          restartSignaled(now, "User requested restart"),
          terminated(now, 0, ""),
          restarting(now, 0, REASON_WITHIN_POLICY),
        );
        state.State = "pending";
        state.Restarts += 1;
        state.LastRestart = rfc3339(now);
      }
    });
    this.cluster.ticker.after(1, () => this.run(allocId, tasks));
  }

  /** After an in-place update into a deployment: the running allocation reports its health again. */
  recheckHealth(allocId: string): void {
    const alloc = this.runnable(allocId);
    if (alloc?.ClientStatus === "running") this.afterStart(allocId);
  }

  /** The main task is OOM-killed once, then restarts by its restart policy. */
  oomKill(allocId: string): void {
    this.exit(allocId, 137, "OOM Killed", true);
  }

  /** The main task keeps exiting with `exitCode` until its restart policy gives up. */
  failAllocation(allocId: string, exitCode: number): void {
    this.failures.set(allocId, { kind: "crash-loop", exitCode });
    this.exit(allocId, exitCode, `Docker container exited with non-zero exit code: ${exitCode}`, false);
  }

  /**
   * The main task exits `times` times in a row, each exit restarted as its restart policy allows, then
   * runs on: a restart loop (with fewer policy attempts than `times`, the allocation fails instead).
   */
  crashTimes(allocId: string, times: number, exitCode: number): void {
    if (times < 1) return;
    this.failures.set(allocId, { kind: "crash-loop", exitCode, remaining: times - 1 });
    this.exit(allocId, exitCode, `Docker container exited with non-zero exit code: ${exitCode}`, false);
  }

  private receive(allocId: string): void {
    const alloc = this.runnable(allocId);
    if (alloc === undefined) return;
    const kind = this.cluster.failureFor(alloc.Namespace, alloc.JobID, alloc.TaskGroup);
    if (kind !== undefined) this.failures.set(allocId, { kind, exitCode: kind === "oom" ? 137 : 1 });
    const now = this.cluster.clock.nowNs();
    this.update(allocId, (a) => {
      a.TaskStates = Object.fromEntries(
        tasksOf(a).map((t) => [t.Name, newTaskState([received(now), taskSetup(now)])]),
      );
      a.ClientStatus = "pending";
      a.ClientDescription = "No tasks have started";
    });
    this.cluster.ticker.after(1, () => this.pull(allocId));
  }

  private pull(allocId: string): void {
    const alloc = this.runnable(allocId);
    if (alloc === undefined) return;
    const now = this.cluster.clock.nowNs();
    this.update(allocId, (a) => {
      for (const task of tasksOf(a).filter((t) => t.Driver === "docker")) {
        a.TaskStates?.[task.Name]?.Events.push(driverMessage(now, `Downloading image ${image(task)}`));
      }
    });
    const pullFails =
      this.failures.get(allocId)?.kind === "image-pull" || tasksOf(alloc).some((t) => unpullable(image(t)));
    if (pullFails && !this.failures.has(allocId))
      this.failures.set(allocId, { kind: "image-pull", exitCode: 1 });
    this.cluster.ticker.after(1, () => (pullFails ? this.pullFailed(allocId) : this.run(allocId)));
  }

  private pullFailed(allocId: string): void {
    const alloc = this.runnable(allocId);
    const task = alloc === undefined ? undefined : tasksOf(alloc)[0];
    if (alloc === undefined || task === undefined) return;
    const error = `Failed to pull \`${image(task)}\`: Error response from daemon: manifest for ${image(task)} not found: manifest unknown: manifest unknown`;
    const now = this.cluster.clock.nowNs();
    this.update(allocId, (a, tx) => {
      const state = a.TaskStates?.[task.Name];
      if (state === undefined) return;
      state.Events.push(driverFailure(now, error));
      this.afterExit(a, task, state, tx, () => this.pull(allocId));
    });
  }

  private run(allocId: string, only?: readonly string[]): void {
    const alloc = this.runnable(allocId);
    if (alloc === undefined) return;
    const now = this.cluster.clock.nowNs();
    const ms = this.cluster.clock.nowMs();
    this.update(allocId, (a) => {
      for (const task of tasksOf(a).filter((t) => only === undefined || only.includes(t.Name))) {
        const state = a.TaskStates?.[task.Name];
        if (state === undefined || state.State === "dead") continue;
        state.Events.push(started(now));
        state.State = "running";
        state.StartedAt ??= rfc3339(now);
        this.cluster.logs.append(
          a.ID,
          task.Name,
          "stdout",
          startupLines(ms, task.Name, image(task), task.Env),
        );
        if (task.Lifecycle?.Hook === "prestart" && !task.Lifecycle.Sidecar)
          finishTask(state, now, false, terminated(now, 0, ""));
      }
      a.ClientStatus = "running";
      a.ClientDescription = "Tasks are running";
    });
    this.afterStart(allocId);
  }

  private afterStart(allocId: string): void {
    const failure = this.failures.get(allocId)?.kind;
    const alloc = this.cluster.store.allocs.get(allocId);
    if (alloc === undefined) return;
    if (failure === "crash-loop" || failure === "oom") {
      this.cluster.ticker.after(1, () => this.crashByFailure(allocId));
    } else if (failure === "unhealthy") {
      const task = tasksOf(alloc)[0];
      if (task !== undefined)
        this.cluster.logs.append(
          allocId,
          task.Name,
          "stderr",
          unhealthyLines(this.cluster.clock.nowMs(), task.Name),
        );
      this.cluster.ticker.after(STEPS.healthyDeadline, () => this.health(allocId, false));
    } else if (reportsHealth(alloc) && alloc.DeploymentStatus?.Healthy == null) {
      this.cluster.ticker.after(1, () => this.health(allocId, true));
    }
  }

  private crashByFailure(allocId: string): void {
    const failure = this.failures.get(allocId);
    if (failure === undefined) return;
    if (failure.remaining !== undefined) {
      if (failure.remaining <= 0) {
        this.failures.delete(allocId);
        return;
      }
      failure.remaining -= 1;
    }
    if (failure.kind === "oom") this.exit(allocId, 137, "OOM Killed", true);
    else
      this.exit(
        allocId,
        failure.exitCode,
        `Docker container exited with non-zero exit code: ${failure.exitCode}`,
        false,
      );
  }

  /** The main task exits; its restart policy decides what happens next. */
  private exit(allocId: string, exitCode: number, message: string, oom: boolean): void {
    const alloc = this.runnable(allocId);
    const task = alloc === undefined ? undefined : tasksOf(alloc)[0];
    if (alloc === undefined || task === undefined || alloc.TaskStates?.[task.Name]?.State !== "running")
      return;
    const now = this.cluster.clock.nowNs();
    const ms = this.cluster.clock.nowMs();
    this.cluster.logs.append(allocId, task.Name, "stderr", oom ? oomLines() : crashLines(ms, task.Name));
    this.update(allocId, (a, tx) => {
      const state = a.TaskStates?.[task.Name];
      if (state === undefined) return;
      state.Events.push(terminated(now, exitCode, message, oom));
      this.afterExit(a, task, state, tx, () => this.run(allocId, [task.Name]));
    });
  }

  /** client/allocrunner/taskrunner/restarts: restart within policy, else fail the task. */
  private afterExit(alloc: Allocation, task: Task, state: TaskState, tx: Txn, again: () => void): void {
    const policy = task.RestartPolicy;
    const now = tx.now;
    if (state.Restarts < policy.Attempts) {
      state.Events.push(restarting(now, policy.Delay, REASON_WITHIN_POLICY));
      state.State = "pending";
      state.Restarts += 1;
      state.LastRestart = rfc3339(now);
      this.cluster.ticker.after(1, again);
      return;
    }
    if (policy.Mode === "delay") {
      // Nomad waits out the interval and tries again; the simulation stops here so settle() ends.
      state.Events.push(restarting(now, policy.Interval, REASON_DELAY));
      state.State = "pending";
      return;
    }
    state.Events.push(notRestarting(now, exceededReason(policy)));
    finishTask(state, now, true);
    this.failAlloc(alloc, task, tx);
  }

  private failAlloc(alloc: Allocation, failedTask: Task, tx: Txn): void {
    for (const [name, state] of Object.entries(alloc.TaskStates ?? {})) {
      if (name === failedTask.Name || state.State === "dead") continue;
      state.Events.push(siblingFailed(tx.now, failedTask.Name), killing(tx.now, 0), killed(tx.now));
      finishTask(state, tx.now, false);
    }
    alloc.ClientStatus = "failed";
    alloc.ClientDescription = "Failed tasks";
    if (alloc.DeploymentID !== "" && alloc.DeploymentStatus?.Healthy !== true) {
      alloc.DeploymentStatus = { ...healthStatus(alloc, tx, false) };
    }
    const job = alloc.Job;
    const group = job?.TaskGroups?.find((g) => g.Name === alloc.TaskGroup);
    if (job !== null && group?.ReschedulePolicy != null) {
      const evaluation = newEval(job, {
        triggeredBy: "retry-failed-alloc",
        jobModifyIndex: job.JobModifyIndex,
      });
      tx.upsertEval(evaluation);
      this.cluster.ticker.after(0, () => this.cluster.enqueue(evaluation.ID));
    }
    this.cluster.ticker.after(0, () => this.cluster.capacityChanged());
  }

  private health(allocId: string, healthy: boolean): void {
    const alloc = this.runnable(allocId);
    if (alloc === undefined || alloc.ClientStatus !== "running" || !reportsHealth(alloc)) return;
    this.update(allocId, (a, tx) => {
      a.DeploymentStatus = healthStatus(a, tx, healthy);
    });
  }

  private stopTasks(allocId: string): void {
    const alloc = this.cluster.store.allocs.get(allocId);
    if (alloc === undefined || !["pending", "running"].includes(alloc.ClientStatus) || !this.nodeUp(alloc))
      return;
    const now = this.cluster.clock.nowNs();
    const ms = this.cluster.clock.nowMs();
    this.update(allocId, (a) => {
      a.TaskStates ??= Object.fromEntries(tasksOf(a).map((t) => [t.Name, newTaskState([received(now)])]));
      for (const [name, state] of Object.entries(a.TaskStates)) {
        if (state.State === "dead") continue;
        const task = tasksOf(a).find((t) => t.Name === name);
        if (state.State === "running") this.cluster.logs.append(a.ID, name, "stdout", stopLines(ms, name));
        state.Events.push(killing(now, task?.KillTimeout ?? 5e9), terminated(now, 0, ""), killed(now));
        finishTask(state, now, false);
      }
      a.ClientStatus = "complete";
      a.ClientDescription = "All tasks have completed";
    });
    this.cluster.capacityChanged();
  }

  /** A live allocation on a node that is up (a down node's client does nothing). */
  private runnable(allocId: string): Allocation | undefined {
    const alloc = this.cluster.store.allocs.get(allocId);
    return alloc !== undefined && isLive(alloc) && this.nodeUp(alloc) ? alloc : undefined;
  }

  private nodeUp(alloc: Allocation): boolean {
    return this.cluster.store.nodes.get(alloc.NodeID)?.Status === "ready";
  }

  private update(allocId: string, mutate: (alloc: Allocation, tx: Txn) => void): void {
    const store = this.cluster.store;
    let deploymentId = "";
    store.write("AllocationUpdated", (tx) => {
      const alloc = store.allocs.get(allocId);
      if (alloc === undefined) return;
      mutate(alloc, tx);
      tx.upsertAlloc(alloc, false);
      const deployment = store.deployments.get(alloc.DeploymentID);
      if (deployment !== undefined) refreshDeploymentCounts(tx, deployment);
      deploymentId = alloc.DeploymentID;
    });
    if (deploymentId !== "") this.cluster.deploymentChanged(deploymentId);
  }
}

/**
 * The client's health watcher runs for every allocation of a service job (deployments and drains both
 * read its verdict: client/allocrunner/health_hook.go), and for others only within a deployment.
 */
const reportsHealth = (alloc: Allocation): boolean =>
  alloc.DeploymentID !== "" || alloc.Job?.Type === "service";

function tasksOf(alloc: Allocation): Task[] {
  return alloc.Job?.TaskGroups?.find((g) => g.Name === alloc.TaskGroup)?.Tasks ?? [];
}

/**
 * Images the simulated registry does not have: any reference saying so ("nginx:1.27-does-not-exist",
 * "example/nonexistent"), so a sandbox user can try a typo'd image without a control line.
 */
const unpullable = (reference: string): boolean => /does-?not-?exist|nonexistent/i.test(reference);

const image = (task: Task): string => (typeof task.Config.image === "string" ? task.Config.image : task.Name);

const newTaskState = (events: TaskState["Events"]): TaskState => ({
  State: "pending",
  Failed: false,
  Restarts: 0,
  LastRestart: null,
  StartedAt: null,
  FinishedAt: null,
  Events: events,
  TaskHandle: null,
});

function finishTask(state: TaskState, now: number, failed: boolean, ...events: TaskState["Events"]): void {
  state.Events.push(...events);
  state.State = "dead";
  state.Failed = failed;
  state.FinishedAt = rfc3339(now);
}

function healthStatus(
  alloc: Allocation,
  tx: Txn,
  healthy: boolean,
): NonNullable<Allocation["DeploymentStatus"]> {
  return {
    Healthy: healthy,
    Timestamp: rfc3339(tx.now),
    Canary: alloc.DeploymentStatus?.Canary ?? false,
    ModifyIndex: tx.index,
  };
}

function siblingFailed(now: number, sibling: string) {
  const event = killed(now);
  return {
    ...event,
    Type: "Sibling Task Failed",
    FailedSibling: sibling,
    DisplayMessage: `Task's sibling "${sibling}" failed`,
    Details: { failed_sibling: sibling },
  };
}
