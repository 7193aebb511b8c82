import { canonicalJson } from "./json.js";
import type { Job, Task, TaskGroup } from "./types.js";

/**
 * scheduler/util.go tasksUpdated, in small: does moving an allocation from `old` to `next` need a new
 * allocation (destructive update) or can it be updated in place? Services, constraints, restart and
 * update policies, kill timeout and count change in place; what the task runs with does not.
 */
export function destructiveChange(old: Job, next: Job, group: string): boolean {
  const a = old.TaskGroups?.find((g) => g.Name === group);
  const b = next.TaskGroups?.find((g) => g.Name === group);
  if (a === undefined || b === undefined) return true;
  if (!same(groupShape(a), groupShape(b))) return true;
  if (a.Tasks.length !== b.Tasks.length) return true;
  return a.Tasks.some((task) => {
    const other = b.Tasks.find((t) => t.Name === task.Name);
    return other === undefined || !same(taskShape(old, a, task), taskShape(next, b, other));
  });
}

const same = (x: unknown, y: unknown): boolean => canonicalJson(x) === canonicalJson(y);

const groupShape = (g: TaskGroup) => ({
  Networks: g.Networks,
  EphemeralDisk: g.EphemeralDisk,
  Volumes: g.Volumes,
});

function taskShape(job: Job, g: TaskGroup, t: Task) {
  return {
    Driver: t.Driver,
    User: t.User,
    Config: t.Config,
    Env: t.Env,
    Meta: { ...job.Meta, ...g.Meta, ...t.Meta },
    Artifacts: t.Artifacts,
    Vault: t.Vault,
    Templates: t.Templates,
    Resources: t.Resources,
    LogDisabled: t.LogConfig.Disabled,
    Lifecycle: t.Lifecycle,
    KillSignal: t.KillSignal,
    VolumeMounts: t.VolumeMounts,
    DispatchPayload: t.DispatchPayload,
  };
}

/** Job.SpecChanged: anything but the server-managed fields differs. */
export function specChanged(old: Job, next: Job): boolean {
  return !same(specOf(old), specOf(next));
}

function specOf(job: Job) {
  const {
    Status: _s,
    StatusDescription: _sd,
    Stable: _st,
    Version: _v,
    SubmitTime: _t,
    CreateIndex: _c,
    ModifyIndex: _m,
    JobModifyIndex: _j,
    NomadTokenID: _n,
    ...spec
  } = job;
  return spec;
}
