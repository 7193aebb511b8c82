import { schedule, type ScheduledTask } from "node-cron";
import type { Logger } from "pino";

/**
 * The alert engine's periodic work on node-cron: looking for due reminders and the daily digest.
 * The engine decides what is due from its own clock, so tests call it directly.
 */
export function scheduleAlertWork(
  work: { remind(): Promise<void>; digest(): Promise<void> },
  schedules: { reminders: string; digest: string },
  log: Logger,
): { stop(): Promise<void> } {
  const run = (what: string, task: () => Promise<void>) => async () => {
    try {
      await task();
    } catch (error) {
      log.error({ err: error }, `alert ${what} failed`);
    }
  };
  const tasks: ScheduledTask[] = [
    schedule(
      schedules.reminders,
      run("reminders", () => work.remind()),
      { name: "alert reminders", noOverlap: true },
    ),
    schedule(
      schedules.digest,
      run("digest", () => work.digest()),
      { name: "alert digest", noOverlap: true },
    ),
  ];
  return {
    async stop() {
      for (const task of tasks) await task.destroy();
    },
  };
}
