/** Timestamps as Nomad writes them: Unix nanoseconds for allocations, RFC 3339 for task states. */

export class NanoClock {
  private last = 0;

  constructor(readonly nowMs: () => number) {}

  /**
   * Unix nanoseconds, strictly increasing. A double holds only ~16 significant digits, so the value is
   * exact to about 256 ns: enough to order events, as Nomad's own clients do.
   */
  nowNs(): number {
    const ns = Math.round(this.nowMs() * 1e6);
    this.last = ns > this.last ? ns : this.last + 1024;
    return this.last;
  }
}

/** Go's time.Time JSON (RFC 3339 with nanoseconds, trailing zeros trimmed), in UTC. */
export function rfc3339(ns: number): string {
  const ms = Math.floor(ns / 1e6);
  const base = new Date(ms).toISOString().slice(0, 19);
  const nanosInSecond = (((ms % 1000) + 1000) % 1000) * 1e6 + Math.max(0, Math.round(ns - ms * 1e6));
  const fraction = String(nanosInSecond).padStart(9, "0").replace(/0+$/, "");
  return `${base}${fraction === "" ? "" : `.${fraction}`}Z`;
}
