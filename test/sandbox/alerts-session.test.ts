/**
 * An incident's life cycle from the terminal: `majordome sandbox` (the built one, as `npm run sandbox`
 * runs it) with a piped script, as in the README's session examples. A `sim:` line takes a node down,
 * the incident is posted, a member's 👀 is explained and an administrator's acknowledges it, the node
 * comes back and the same message is edited to resolved.
 */
import { spawn } from "node:child_process";
import { delimiter, dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../support/paths.js";

/** Runs the sandbox on a script; resolves with what it printed once it exits. */
function sandbox(script: string, speed: number): Promise<{ code: number | null; out: string; err: string }> {
  const path = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`;
  const child = spawn(join(repoRoot(), "bin", "majordome"), ["sandbox", "--speed", String(speed)], {
    cwd: repoRoot(),
    env: { ...process.env, PATH: path },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  child.stdin.end(script);
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, out, err })));
}

describe("the sandbox's alert controls", () => {
  it("an incident fires, is acknowledged by +👀, and resolves in place", async () => {
    const { code, out, err } = await sandbox(
      [
        "sim: node down node-2",
        "sleep 30",
        "carol: +👀 1",
        "bob: +👀 1",
        "sim: node up node-2",
        "sleep 30",
        "alice: !incidents --all",
      ].join("\n") + "\n",
      10,
    );
    expect(code, err).toBe(0);
    const lines = out.split("\n");
    const at = (pattern: RegExp) => lines.findIndex((line) => pattern.test(line));

    const fired = at(/^\[1\] 🔴 \*\*CRITICAL\*\* · node node\\-2 is down — firing since \d\d:\d\d UTC/);
    const refused = at(
      /^\[2\] \(thread of 1\) @carol:deuxfleurs\.fr: your 👀 does not acknowledge: incident ack is for members of admin/,
    );
    const acknowledged = at(/^\s+👀 acknowledged by @bob:deuxfleurs\.fr at \d\d:\d\d UTC/);
    const resolved = at(/^\[1\] \(edited\) ✅ \*\*RESOLVED\*\* · node node\\-2 is down — lasted /);
    expect(fired, out).toBeGreaterThan(at(/^> sim: node down node-2$/));
    expect(fired).toBeLessThan(at(/^> carol: \+👀 1$/));
    expect(refused, out).toBeGreaterThan(fired);
    expect(acknowledged, out).toBeGreaterThan(at(/^> bob: \+👀 1$/));
    expect(lines[acknowledged - 2]).toMatch(/^\[1\] \(edited\) 🔴 \*\*CRITICAL\*\* · node node\\-2 is down/);
    expect(resolved, out).toBeGreaterThan(at(/^> sim: node up node-2$/));
    expect(lines.slice(resolved, resolved + 4).join("\n")).toMatch(/Recovered: node node\\-2 is ready again/);
    // One incident, one message: nothing but edits of [1] and answers after it.
    expect(out).not.toMatch(/^\[([2-9]|\d{2,})\] 🔴/m);
    expect(out).toMatch(/\*\*Resolved recently\*\*\n\s+- `i1` critical · node node\\-2 is down — lasted/);
  }, 60_000);
});
