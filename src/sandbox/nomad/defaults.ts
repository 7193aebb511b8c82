import { NS } from "./duration.js";
import type {
  EphemeralDisk,
  LogConfig,
  MigrateStrategy,
  ReschedulePolicy,
  RestartPolicy,
  UpdateStrategy,
} from "./types.js";

/** Defaults Nomad's api package fills in on Canonicalize (api/tasks.go, api/jobs.go, api/resources.go). */

export const defaultUpdate = (): UpdateStrategy => ({
  Stagger: 30 * NS.s,
  MaxParallel: 1,
  HealthCheck: "checks",
  MinHealthyTime: 10 * NS.s,
  HealthyDeadline: 5 * NS.m,
  ProgressDeadline: 10 * NS.m,
  AutoRevert: false,
  AutoPromote: false,
  Canary: 0,
});

export const defaultMigrate = (): MigrateStrategy => ({
  MaxParallel: 1,
  HealthCheck: "checks",
  MinHealthyTime: 10 * NS.s,
  HealthyDeadline: 5 * NS.m,
});

export function defaultRestart(jobType: string): RestartPolicy {
  const batch = jobType === "batch" || jobType === "sysbatch";
  return {
    Attempts: batch ? 3 : 2,
    Interval: batch ? 24 * NS.h : 30 * NS.m,
    Delay: 15 * NS.s,
    Mode: "fail",
    RenderTemplates: false,
  };
}

export function defaultReschedule(jobType: string): ReschedulePolicy {
  if (jobType === "batch") {
    return {
      Attempts: 1,
      Interval: 24 * NS.h,
      Delay: 5 * NS.s,
      DelayFunction: "constant",
      MaxDelay: 0,
      Unlimited: false,
    };
  }
  return {
    Attempts: 0,
    Interval: 0,
    Delay: 30 * NS.s,
    DelayFunction: "exponential",
    MaxDelay: NS.h,
    Unlimited: true,
  };
}

export const defaultEphemeralDisk = (): EphemeralDisk => ({ Sticky: false, SizeMB: 300, Migrate: false });

export const defaultLogConfig = (): LogConfig => ({ MaxFiles: 10, MaxFileSizeMB: 10, Disabled: false });

export const DEFAULT_KILL_TIMEOUT = 5 * NS.s;
export const DEFAULT_CPU = 100;
export const DEFAULT_MEMORY_MB = 300;
export const DEFAULT_PRIORITY = 50;
