import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { repoRoot } from "./paths.js";

/** A majordome process (the built one, `npm run build`), as Nomad would run it. */
export interface MajordomeProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr(): string;
  /** Resident memory in bytes (from /proc). */
  rss(): number;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnMajordome(configPath: string, env: Record<string, string> = {}): MajordomeProcess {
  // Through the launcher, as Nomad runs it, with this Node.js first on the PATH.
  const path = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`;
  const child = spawn(join(repoRoot(), "bin", "majordome"), ["run", configPath], {
    env: { ...process.env, PATH: path, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    exited,
    stderr: () => stderr,
    rss: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls /health until it answers 200 (synced), or fails after `timeoutMs`. */
export async function waitHealthy(healthUrl: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(healthUrl)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`${healthUrl} not healthy within ${timeoutMs} ms`);
}
