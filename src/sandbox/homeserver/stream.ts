/**
 * One global stream position for everything /sync reports (room events, account data, typing,
 * receipts). Every change takes the next position, so a `since` token is just a position: a sync
 * returns exactly the changes after it, which is what makes "never twice, never skipped" hold.
 */
export class Stream {
  private position = 0;
  private waiters = new Set<() => void>();
  private isClosed = false;

  get closed(): boolean {
    return this.isClosed;
  }

  get current(): number {
    return this.position;
  }

  /** Takes the next position and wakes every long-poll (they re-check once the caller has stored its change). */
  advance(): number {
    this.position += 1;
    const woken = [...this.waiters];
    this.waiters.clear();
    // Deferred so the caller finishes storing the change under this position before anyone looks.
    queueMicrotask(() => woken.forEach((wake) => wake()));
    return this.position;
  }

  /** Resolves on the next advance(), after `timeoutMs`, on abort, or on close(); never rejects. */
  wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal.addEventListener("abort", done, { once: true });
      if (signal.aborted) return done();
      this.waiters.add(done);
    });
  }

  close(): void {
    this.isClosed = true;
    const woken = [...this.waiters];
    this.waiters.clear();
    woken.forEach((wake) => wake());
  }
}
