/** Go's time.Duration: parsing ("1h30m", "15s") to nanoseconds and Duration.String() back. */

export const NS = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 } as const;

const UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Nanoseconds, or undefined when the text is not a Go duration. */
export function parseGoDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "0") return 0;
  const sign = trimmed.startsWith("-") ? -1 : 1;
  const body = trimmed.replace(/^[-+]/, "");
  if (body === "") return undefined;
  const pattern = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (const match of body.matchAll(pattern)) {
    total += Number(match[1]) * (UNITS[match[2] ?? ""] ?? 0);
    consumed += match[0].length;
  }
  return consumed === body.length && consumed > 0 ? sign * Math.round(total) : undefined;
}

/** Go's Duration.String(): "30m0s", "1h0m0s", "15s", "1.5s", "300ms", "0s". */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  const abs = Math.abs(ns);
  if (abs < NS.s) return sign + subSecond(abs);
  const hours = Math.floor(abs / NS.h);
  const minutes = Math.floor((abs % NS.h) / NS.m);
  const seconds = trimFraction(((abs % NS.m) / NS.s).toFixed(9));
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${seconds}s`;
}

function subSecond(ns: number): string {
  if (ns < NS.us) return `${ns}ns`;
  if (ns < NS.ms) return `${trimFraction((ns / NS.us).toFixed(3))}µs`;
  return `${trimFraction((ns / NS.ms).toFixed(6))}ms`;
}

const trimFraction = (text: string): string => (text.includes(".") ? text.replace(/\.?0+$/, "") : text);
