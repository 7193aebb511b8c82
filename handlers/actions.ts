import type { ConsulSecrets } from "../src/backends/consul-secrets.js";
import type { CommandContext } from "../src/commands/context.js";

/**
 * Records a provisioning action in the journal under an ID derived from the command, so the same command
 * replayed after a crash is recognised. Null when it was handled already.
 */
export async function beginAction(
  ctx: CommandContext,
  kind: string,
  args: Record<string, unknown>,
): Promise<string | null> {
  const id = `${kind.replace(/\W+/g, "-")}-${ctx.eventId}`;
  const { fresh } = await ctx.services.journal.begin({
    id,
    kind,
    args,
    requester: ctx.identity.sender,
    roomId: ctx.roomId,
  });
  return fresh ? id : null;
}

/** Undoes what an action made, newest first, and says in one sentence what was and wasn't undone. */
export class Rollback {
  private readonly undone: string[] = [];
  private readonly problems: string[] = [];

  async undo(what: string, step: () => Promise<unknown>): Promise<void> {
    try {
      await step();
      this.undone.push(what);
    } catch (error) {
      this.problems.push(`${what}: ${(error as Error).message}`);
    }
  }

  summary(): string {
    if (this.undone.length === 0 && this.problems.length === 0) return "Nothing had been made.";
    const failed = this.problems.length
      ? ` Could not roll back: ${this.problems.join("; ")} — check by hand.`
      : "";
    return `Rolled back: ${this.undone.join(", ") || "nothing"}.${failed}`;
  }
}

/**
 * Rolls back the secrets an action wrote: each key that holds the value the action wrote (undefined:
 * absent when the action began, so whatever is there now is the action's own).
 */
export async function undoSecrets(
  rollback: Rollback,
  secrets: ConsulSecrets,
  ours: ReadonlyArray<readonly [key: string, value: string | undefined]>,
): Promise<void> {
  const present: string[] = [];
  for (const [key, value] of ours) {
    const stored = await secrets.read(key).catch(() => undefined);
    if (stored !== undefined && (value === undefined || stored === value)) present.push(key);
  }
  if (present.length > 0)
    await rollback.undo("the secrets", async () => {
      for (const key of present) await secrets.remove(key);
    });
}
