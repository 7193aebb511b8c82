import { execFileSync } from "node:child_process";

/** The e2e tests run majordome as a real process: build it once before they start. */
export default function setup(): void {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
    stdio: "inherit",
  });
}
