/**
 * Paces the simulation on a logical clock of steps: work scheduled `n` steps ahead runs after every
 * step before it, whatever stepMs is (stepMs is only the real time between steps; 0 = next turn of
 * the event loop, so HTTP requests still interleave). `idle()` resolves when no work remains, which
 * is what settle() means: every evaluation, allocation and deployment has gone as far as it will.
 */
export class Ticker {
  private step = 0;
  private readonly queue = new Map<number, (() => void)[]>();
  private pending = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private waiters: (() => void)[] = [];
  private closed = false;

  constructor(private readonly stepMs: number) {}

  after(steps: number, fn: () => void): void {
    if (this.closed) return;
    const due = this.step + Math.max(0, Math.floor(steps));
    this.queue.set(due, [...(this.queue.get(due) ?? []), fn]);
    this.pending += 1;
    this.arm();
  }

  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
    }
    this.timer = undefined;
    this.queue.clear();
    this.pending = 0;
    this.wake();
  }

  private arm(): void {
    if (this.timer !== undefined || this.closed || this.pending === 0) return;
    this.timer =
      this.stepMs > 0 ? setTimeout(() => this.tick(), this.stepMs) : setImmediate(() => this.tick());
  }

  /** Runs everything due now, including work that work due now schedules for now. */
  private tick(): void {
    this.timer = undefined;
    for (
      let due = this.queue.get(this.step);
      due !== undefined && due.length > 0;
      due = this.queue.get(this.step)
    ) {
      this.queue.set(this.step, []);
      for (const fn of due) this.run(fn);
    }
    this.queue.delete(this.step);
    this.step += 1;
    if (this.pending === 0) this.wake();
    else this.arm();
  }

  private run(fn: () => void): void {
    try {
      if (!this.closed) fn();
    } catch (error) {
      console.error("nomad double: simulation step failed", error);
    } finally {
      this.pending = Math.max(0, this.pending - 1);
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
