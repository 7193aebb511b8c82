import { code, message } from "../src/chat/message.js";
import type { Services } from "../src/commands/context.js";
import type { ActionRecord } from "../src/state/journal.js";
import type { Resumer } from "../src/state/resume.js";
import { resumeBucketCreation } from "./bucket.js";
import { resumeDatabaseCreation } from "./db.js";
import { resumeDeploy } from "./deploy.js";

/** The kinds of action that resume after a restart from their last completed step, and how. */
export function resumers(services: Services): Map<string, Resumer> {
  // Where the action's command was answered, when it says (a deploy: a reply, or the request's thread).
  const report = (action: ActionRecord, text: string) => {
    const { replyTo, threadRoot } = action.args;
    const placement =
      typeof threadRoot === "string" ? { threadRoot } : typeof replyTo === "string" ? { replyTo } : {};
    return services.outbox.send(action.roomId, message(text), { id: `${action.id}#resumed`, ...placement });
  };
  const resumer =
    (
      kind: string,
      resume: (services: Services, action: ActionRecord) => Promise<string>,
      opts: { closeAfterReport?: boolean } = {},
    ): Resumer =>
    async (action) => {
      try {
        const result = await resume(services, action);
        await report(action, `♻️ Resumed after a restart (action ${code(action.id)}): ${result}`);
        // An action that ends by saying so is closed once that is in the outbox, not before.
        if (opts.closeAfterReport && (await services.journal.get(action.id))?.status === "running")
          await services.journal.finish(action.id, "succeeded");
      } catch (error) {
        const why = (error as Error).message;
        await report(
          action,
          `❌ Resuming ${code(kind)} (action ${code(action.id)}) after a restart failed: ${why}`,
        );
      }
    };
  // Following a rollout may take the whole deploy timeout: it goes on beside start-up, not before it.
  const inBackground =
    (resume: Resumer): Resumer =>
    async (action) => {
      // A follow-up cut short by a stop leaves the action in the journal for the next start (or is reported).
      void resume(action).catch(() => undefined);
    };
  return new Map<string, Resumer>([
    ["deploy", inBackground(resumer("deploy", resumeDeploy, { closeAfterReport: true }))],
    ["db create", resumer("db create", resumeDatabaseCreation)],
    ["bucket create", resumer("bucket create", resumeBucketCreation)],
  ]);
}
