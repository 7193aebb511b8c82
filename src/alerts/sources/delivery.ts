import type { Clock } from "../../clock.js";
import type { Logger } from "../../log.js";
import type { Signal, SignalSink } from "../signal.js";

/** What the alert sources share: backoff delays and handing signals to the engine. */

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

/** Doubles from `initialMs` per attempt up to `maxMs`; "equal jitter" (half fixed, half random). */
export function backoffDelay(attempt: number, backoff: Backoff, random: () => number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface DeliveryContext {
  sink: SignalSink;
  clock: Clock;
  log: Logger;
  /** Aborted when the source stops: then an undelivered signal is given up (and logged). */
  stop: AbortSignal;
  source: string;
  backoff?: Backoff;
  random?: () => number;
}

/**
 * Hands a signal to the engine, retrying until it is taken: a source counts a signal as reported once
 * delivered, so dropping one would lose it for good. Returns false only when the source stopped first.
 */
export async function deliver(ctx: DeliveryContext, signal: Signal): Promise<boolean> {
  const backoff = ctx.backoff ?? { initialMs: 500, maxMs: 30_000 };
  for (let attempt = 0; ; attempt++) {
    try {
      await ctx.sink(signal);
      return true;
    } catch (error) {
      if (ctx.stop.aborted) {
        ctx.log.error(
          { source: ctx.source, kind: signal.kind, err: messageOf(error) },
          "signal not delivered",
        );
        return false;
      }
      ctx.log.warn({ source: ctx.source, err: messageOf(error) }, "signal not taken, retrying");
      const delay = backoffDelay(attempt, backoff, ctx.random ?? Math.random);
      await ctx.clock.sleep(delay, ctx.stop).catch(() => undefined);
    }
  }
}

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
