import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import type { Signal, SignalSink } from "../../src/alerts/signal.js";
import type { ManualClock } from "../../src/clock.js";
import { FileStateStore } from "../../src/state/file-store.js";

/** Shared by the alert sources' tests. */

export const silentLog = pino({ level: "silent" });

export async function tempStore(dir?: string): Promise<{ store: FileStateStore; dir: string }> {
  const stateDir = dir ?? (await mkdtemp(join(tmpdir(), "alert-sources-")));
  return { store: await FileStateStore.open(stateDir, { fsync: false }), dir: stateDir };
}

export interface RecordingSink {
  sink: SignalSink;
  signals: Signal[];
  /** "kind status subject-thing" lines, in order: what a test compares. */
  lines(): string[];
}

export function recordingSink(): RecordingSink {
  const signals: Signal[] = [];
  const thing = (s: Signal) =>
    s.subject.alloc ??
    s.subject.check ??
    s.subject.deployment ??
    s.subject.node ??
    s.subject.job ??
    s.subject.backend;
  return {
    signals,
    sink: async (signal) => {
      signals.push(signal);
    },
    lines: () => signals.map((s) => `${s.kind} ${s.status} ${thing(s) ?? "?"}`),
  };
}

/**
 * Waits (real time, polling every few ms) until `condition` holds: for what travels over loopback
 * sockets. Timers of the code under test run on a ManualClock the test advances.
 */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Advances the clock in steps, letting loopback I/O happen between them. */
export async function advanceBy(clock: ManualClock, ms: number, steps = 1): Promise<void> {
  for (let i = 0; i < steps; i++) {
    await clock.advance(ms / steps);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
