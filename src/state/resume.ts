import type { Logger } from "pino";
import { code, message } from "../chat/message.js";
import type { Outbox } from "../chat/outbox.js";
import type { ActionJournal, ActionRecord } from "./journal.js";

/** Continues an unfinished action of one kind from its last completed step (steps it did are skipped). */
export type Resumer = (action: ActionRecord) => Promise<void>;

/**
 * At start-up: actions a previous run began and did not finish are resumed by their kind's resumer; an
 * action whose kind cannot be resumed safely is closed as interrupted and reported in its room, with what
 * was and wasn't done.
 */
export async function resumeUnfinished(
  journal: ActionJournal,
  resumers: Map<string, Resumer>,
  outbox: Outbox,
  log: Logger,
): Promise<void> {
  for (const action of await journal.unfinished()) {
    const resume = resumers.get(action.kind);
    if (resume) {
      log.info({ action: action.id, kind: action.kind }, "resuming an interrupted action");
      try {
        await resume(action);
      } catch (error) {
        log.error({ err: error, action: action.id }, "resuming failed");
        await journal.finish(action.id, "failed", (error as Error).message);
      }
      continue;
    }
    await journal.finish(action.id, "interrupted", "majordome restarted; this kind of action is not resumed");
    const done = action.steps.map((s) => code(s.name)).join(", ") || "nothing";
    await outbox.send(
      action.roomId,
      message(
        `⚠️ ${code(action.kind)} (action ${code(action.id)}, asked by ${action.requester}) was interrupted by a restart. ` +
          `Steps done: ${done}. It was not resumed: nothing more was done. Check its state before running it again.`,
      ),
      { id: `${action.id}#interrupted` },
    );
  }
}
