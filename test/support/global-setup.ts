import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The e2e tests run majordome as a real process: build it once before they start. Every temporary
 * directory the tests make goes under one that is removed at the end.
 */
export default function setup(): () => void {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
    stdio: "inherit",
  });
  const dir = mkdtempSync(join(tmpdir(), "majordome-tests-"));
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
