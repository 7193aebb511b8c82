import { formatGoDuration } from "./duration.js";
import type { RestartPolicy, TaskEvent } from "./types.js";

/**
 * Task events as a Nomad client records them: the Type strings of nomad/structs (taskEventTypes in
 * nomad-enums.json), the Details map the setters fill (SetExitCode → exit_code, SetOOMKilled →
 * oom_killed...) and the DisplayMessage of TaskEvent.PopulateEventDisplayMessage.
 */

const blank = (type: string, time: number): TaskEvent => ({
  Type: type,
  Time: time,
  DisplayMessage: "",
  Details: {},
  FailsTask: false,
  RestartReason: "",
  SetupError: "",
  DriverError: "",
  ExitCode: 0,
  Signal: 0,
  Message: "",
  KillReason: "",
  KillTimeout: 0,
  KillError: "",
  StartDelay: 0,
  DownloadError: "",
  ValidationError: "",
  DiskLimit: 0,
  FailedSibling: "",
  VaultError: "",
  TaskSignalReason: "",
  TaskSignal: "",
  DriverMessage: "",
  GenericSource: "",
});

/** client/allocrunner/taskrunner/restarts: reasons the restart tracker gives. */
export const REASON_WITHIN_POLICY = "Restart within policy";
export const REASON_DELAY = "Exceeded allowed attempts, applying a delay";

export const exceededReason = (policy: RestartPolicy): string =>
  `Exceeded allowed attempts ${policy.Attempts} in interval ${formatGoDuration(policy.Interval)} and mode is "${policy.Mode}"`;

export const received = (t: number): TaskEvent => ({
  ...blank("Received", t),
  DisplayMessage: "Task received by client",
});

export const taskSetup = (t: number): TaskEvent => ({
  ...blank("Task Setup", t),
  Message: "Building Task Directory",
  DisplayMessage: "Building Task Directory",
  Details: { message: "Building Task Directory" },
});

export const driverMessage = (t: number, message: string): TaskEvent => ({
  ...blank("Driver", t),
  DriverMessage: message,
  DisplayMessage: message,
  Details: { driver_message: message },
});

export const driverFailure = (t: number, error: string): TaskEvent => ({
  ...blank("Driver Failure", t),
  DriverError: error,
  DisplayMessage: error,
  Details: { driver_error: error },
});

export const started = (t: number): TaskEvent => ({
  ...blank("Started", t),
  DisplayMessage: "Task started by client",
});

export function terminated(t: number, exitCode: number, message: string, oomKilled = false): TaskEvent {
  const parts = [`Exit Code: ${exitCode}`];
  if (message !== "") parts.push(`Exit Message: ${JSON.stringify(message)}`);
  return {
    ...blank("Terminated", t),
    ExitCode: exitCode,
    Message: message,
    DisplayMessage: parts.join(", "),
    Details: {
      exit_code: String(exitCode),
      signal: "0",
      oom_killed: String(oomKilled),
      ...(message === "" ? {} : { exit_message: message }),
    },
  };
}

export function restarting(t: number, delayNs: number, reason: string): TaskEvent {
  const inText = `Task restarting in ${formatGoDuration(delayNs)}`;
  return {
    ...blank("Restarting", t),
    StartDelay: delayNs,
    RestartReason: reason,
    DisplayMessage: reason !== "" && reason !== REASON_WITHIN_POLICY ? `${reason} - ${inText}` : inText,
    Details: { restart_reason: reason, start_delay: String(delayNs) },
  };
}

export const notRestarting = (t: number, reason: string): TaskEvent => ({
  ...blank("Not Restarting", t),
  RestartReason: reason,
  FailsTask: true,
  DisplayMessage: reason === "" ? "Task exceeded restart policy" : reason,
  Details: { restart_reason: reason, fails_task: "true" },
});

export const killing = (t: number, killTimeoutNs: number): TaskEvent => ({
  ...blank("Killing", t),
  KillTimeout: killTimeoutNs,
  DisplayMessage: `Sent interrupt. Waiting ${formatGoDuration(killTimeoutNs)} before force killing`,
  Details: { kill_timeout: formatGoDuration(killTimeoutNs) },
});

export const killed = (t: number): TaskEvent => ({
  ...blank("Killed", t),
  DisplayMessage: "Task successfully killed",
});

export const restartSignaled = (t: number, reason: string): TaskEvent => ({
  ...blank("Restart Signaled", t),
  RestartReason: reason,
  DisplayMessage: reason,
  Details: { restart_reason: reason },
});
