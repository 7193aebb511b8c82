import { ManualClock } from "../../src/clock.js";
import { StolonBackend } from "../../src/backends/stolon/backend.js";
import { RawConsulKv, type StolonKv } from "../../src/backends/stolon/kv.js";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import { startStolonDouble, type StolonDouble, type StolonDoubleOptions } from "../../src/sandbox/stolon.js";

/** The Consul double with a simulated Stolon cluster in it, on a manual clock, and majordome's backend. */
export interface StolonWorld {
  clock: ManualClock;
  consul: ConsulDouble;
  stolon: StolonDouble;
  kv: RawConsulKv;
  backend: StolonBackend;
  /** Moves simulated time on (in steps, letting the sentinel's rounds and HTTP answers happen) until `work` settles. */
  drive<T>(work: Promise<T>, opts?: { stepMs?: number; maxMs?: number }): Promise<T>;
  /** Moves simulated time on by `ms`, letting every sentinel round due run. */
  elapse(ms: number, stepMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startStolonWorld(
  opts: { kv?: (kv: StolonKv) => StolonKv; double?: Partial<StolonDoubleOptions> } = {},
): Promise<StolonWorld> {
  const clock = new ManualClock();
  const consul = await startConsulDouble({ now: () => clock.now() });
  const stolon = await startStolonDouble({ consulUrl: consul.url, clock, ...opts.double });
  const kv = new RawConsulKv({ address: consul.url, timeoutMs: 10_000, clock });
  const backend = new StolonBackend({
    kv: opts.kv ? opts.kv(kv) : kv,
    prefix: "stolon/cluster",
    clock,
    rewriteWindowMs: 12_000,
  });
  const realPause = () => new Promise((resolve) => setTimeout(resolve, 2));
  const step = async (ms: number) => {
    await clock.advance(ms);
    await stolon.idle();
    await realPause();
  };
  return {
    clock,
    consul,
    stolon,
    kv,
    backend,
    async drive(work, { stepMs = 500, maxMs = 10 * 60_000 } = {}) {
      let settled = false;
      void work.then(
        () => (settled = true),
        () => (settled = true),
      );
      await realPause();
      for (let elapsed = 0; !settled && elapsed < maxMs; elapsed += stepMs) await step(stepMs);
      if (!settled) throw new Error(`did not settle within ${maxMs} ms of simulated time`);
      return work;
    },
    async elapse(ms, stepMs = 1000) {
      for (let elapsed = 0; elapsed < ms; elapsed += stepMs) await step(stepMs);
    },
    async close() {
      await stolon.close();
      await kv.close();
      await consul.close();
    },
  };
}

type JsonRecord = Record<string, unknown>;

/** The object holding the last segment of a dotted path ("keepers.keeper_a.status.healthy"). */
function parentOf(doc: unknown, path: string): { parent: JsonRecord; key: string } {
  const segments = path.split(".");
  const key = segments.pop()!;
  let parent = doc as JsonRecord;
  for (const segment of segments) parent = parent[segment] as JsonRecord;
  return { parent, key };
}

export function getPath(doc: unknown, path: string): unknown {
  const { parent, key } = parentOf(doc, path);
  return parent[key];
}

export function setPath(doc: unknown, path: string, value: unknown): void {
  const { parent, key } = parentOf(doc, path);
  parent[key] = value;
}

export function deletePath(doc: unknown, path: string): void {
  const { parent, key } = parentOf(doc, path);
  delete parent[key];
}
