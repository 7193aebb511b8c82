import { JOB_NAME, type NomadServices } from "../src/backends/nomad/index.js";
import type { Allocation } from "../src/backends/nomad/types.js";
import type { CommandContext } from "../src/commands/context.js";
import { name } from "../src/commands/types.js";

export const jobName = name("job", JOB_NAME, "a job name: lowercase letters, digits, - and _");
export const groupName = name(
  "group",
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
  "a group or task name: letters, digits, ., - and _",
);

export function nomadOf(ctx: CommandContext): NomadServices {
  const nomad = ctx.services.nomad;
  if (!nomad) throw new Error("Nomad is not configured (no nomad section in majordome's config)");
  return nomad;
}

/** Waits on the clock between polls of things Nomad has no blocking query for. */
export async function pollUntil<T>(
  ctx: CommandContext,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  opts: { everyMs: number; timeoutMs: number },
): Promise<T | undefined> {
  const { clock } = ctx.services;
  const deadline = clock.now() + opts.timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (clock.now() >= deadline) return undefined;
    await clock.sleep(opts.everyMs);
  }
}

export function isRunning(alloc: Allocation): boolean {
  return alloc.DesiredStatus === "run" && alloc.ClientStatus === "running";
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}
