/** Go standard-library parsing the Consul server applies to query parameters and bodies, with its messages. */

const NS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** time.ParseDuration: "300ms", "1h30m", "0"; returns nanoseconds. Throws with Go's message. */
export function parseGoDuration(text: string): number {
  const invalid = new Error(`time: invalid duration ${goQuote(text)}`);
  let rest = text;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") throw invalid;
  let total = 0;
  const part = /^(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest !== "") {
    const match = part.exec(rest);
    const [whole, amount = "", unit = ""] = match ?? [];
    if (match === null || amount === "" || amount === ".") throw invalid;
    total += Number(amount) * (NS_PER_UNIT[unit] ?? 0);
    rest = rest.slice(whole?.length ?? rest.length);
  }
  return sign * Math.round(total);
}

/** strconv.ParseUint(text, 10, 64), as Consul reads ?cas=, ?flags= and ?index=. */
export function parseUint64(text: string): bigint {
  if (!/^\d+$/.test(text)) throw new Error(`strconv.ParseUint: parsing ${goQuote(text)}: invalid syntax`);
  const value = BigInt(text);
  if (value > 0xffff_ffff_ffff_ffffn) {
    throw new Error(`strconv.ParseUint: parsing ${goQuote(text)}: value out of range`);
  }
  return value;
}

/** Go's %q (close enough for the ASCII keys and ids in error messages). */
export const goQuote = (text: string): string => JSON.stringify(text);
