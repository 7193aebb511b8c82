/** One line of a sandbox script, as typed or piped. */
export type ScriptLine =
  | { kind: "say"; user: string; text: string }
  | { kind: "react"; user: string; key: string; message: number; withdraw: boolean }
  | { kind: "sleep"; seconds: number }
  | { kind: "sim"; control: string }
  | { kind: "blank" }
  | { kind: "invalid"; problem: string };

const USER = String.raw`(@[^:\s]+:\S+?|[a-z0-9._=\-/]+)`;
const SAY = new RegExp(`^${USER}:\\s+(.*)$`);
const REACT = /^([+-])(\S+)\s+(\d+)$/u;

export function parseScriptLine(line: string): ScriptLine {
  const trimmed = line.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return { kind: "blank" };
  const sleep = /^sleep\s+(\d+(?:\.\d+)?)$/.exec(trimmed);
  if (sleep) return { kind: "sleep", seconds: Number(sleep[1]) };
  if (trimmed.startsWith("sim:")) return { kind: "sim", control: trimmed.slice(4).trim() };
  const say = SAY.exec(trimmed);
  if (!say) {
    return {
      kind: "invalid",
      problem: `cannot read "${trimmed}": expected "name: text", "name: +✅ N", "sleep N" or "sim: …"`,
    };
  }
  const [, user, rest] = say as unknown as [string, string, string];
  const react = REACT.exec(rest);
  if (react) {
    const [, sign, key, n] = react as unknown as [string, string, string, string];
    return { kind: "react", user, key, message: Number(n), withdraw: sign === "-" };
  }
  return { kind: "say", user, text: rest };
}
