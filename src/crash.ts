/**
 * Named points where the crash tests kill the process (SIGKILL, no clean-up), to prove that a restart
 * neither loses nor repeats anything. Inert unless MAJORDOME_CRASH_AT names the point.
 */
export type CrashPoint = "event-accepted" | "message-sent" | `step:${string}`;

const armed = process.env.MAJORDOME_CRASH_AT;

export function crashPoint(point: CrashPoint): void {
  if (armed === point) process.kill(process.pid, "SIGKILL");
}
