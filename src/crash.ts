import { readFileSync } from "node:fs";

/**
 * Named points where the crash tests kill the process (SIGKILL, no clean-up), to prove that a restart
 * neither loses nor repeats anything. Inert unless MAJORDOME_CRASH_AT names the point, or
 * MAJORDOME_CRASH_FILE names a file that does: it is read again at each point, so that a test can arm
 * a process that is already running. `point#n` kills the n-th time the point is reached once armed.
 */
export type CrashPoint = "event-accepted" | "message-sent" | `step:${string}`;

const fromEnv = process.env.MAJORDOME_CRASH_AT;
const armFile = process.env.MAJORDOME_CRASH_FILE;

let armed: { spec: string; point: string; times: number; seen: number } | undefined;

export function crashPoint(point: CrashPoint): void {
  const spec = armFile ? readArmFile(armFile) : fromEnv;
  if (!spec) {
    armed = undefined; // disarmed: arming the same point again counts from zero
    return;
  }
  if (armed?.spec !== spec) {
    const [name = "", times] = spec.split("#");
    armed = { spec, point: name, times: Math.max(1, Number(times ?? 1) || 1), seen: 0 };
  }
  if (armed.point === point && ++armed.seen >= armed.times) process.kill(process.pid, "SIGKILL");
}

function readArmFile(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
}
