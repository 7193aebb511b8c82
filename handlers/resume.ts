import { code, message } from "../src/chat/message.js";
import type { Services } from "../src/commands/context.js";
import type { ActionRecord } from "../src/state/journal.js";
import type { Resumer } from "../src/state/resume.js";
import { resumeBucketCreation } from "./bucket.js";
import { resumeDatabaseCreation } from "./db.js";

/** The kinds of action that resume after a restart from their last completed step, and how. */
export function resumers(services: Services): Map<string, Resumer> {
  const report = (action: { roomId: string; id: string }, text: string) =>
    services.outbox.send(action.roomId, message(text), { id: `${action.id}#resumed` });
  return new Map<string, Resumer>([
    [
      "db create",
      async (action) => {
        try {
          const result = await resumeDatabaseCreation(services, action);
          await report(action, `♻️ Resumed after a restart (action ${code(action.id)}): ${result}`);
        } catch (error) {
          await report(
            action,
            `❌ Resuming ${code("db create")} (action ${code(action.id)}) after a restart failed: ${(error as Error).message}`,
          );
        }
      },
    ],
  ]);
}
