/** `npm run bench`: every benchmark, its figures printed as they come, with the targets next to them. */
import "../src/quiet-deprecations.js";
import { benchAlerts } from "./alerts.js";
import { benchAuthorization } from "./authorization.js";
import { benchDeploy } from "./deploy.js";
import { benchFoundation } from "./foundation.js";
import { benchProvisioning } from "./provisioning.js";
import { benchPostgresPrimitives } from "./postgres.js";
import { benchTakeover } from "./takeover.js";

interface Target {
  figure: string;
  check: (value: number, all: Record<string, number>) => boolean;
  text: string;
}

const TARGETS: Target[] = [
  { figure: "command.overhead.p99_ms", check: (v) => v < 10, text: "< 10 ms" },
  { figure: "command.throughput.per_s", check: (v) => v >= 300, text: ">= 300 commands/s" },
  { figure: "memory.rss.idle_over_bare_mb", check: (v) => v <= 30, text: "<= 30 MB over bare libraries" },
  {
    figure: "deploy.3_groups.majordome_cpu.mean_ms",
    check: (v) => v < 20,
    text: "< 20 ms of majordome's CPU",
  },
  {
    figure: "alerts.pipeline.share_of_bare_parse",
    check: (v) => v >= 0.5,
    text: ">= half the rate of bare JSON.parse",
  },
  {
    figure: "alerts.storm.messages",
    check: (v) => v <= 5,
    text: "<= 5 messages for a node of 500 allocations",
  },
  { figure: "alerts.storm.lost", check: (v) => v === 0, text: "nothing lost" },
  { figure: "alerts.latency.critical_to_sent.p99_ms", check: (v) => v < 100, text: "p99 < 100 ms" },
];

const SECTIONS: Array<[string, () => Promise<Record<string, number>>]> = [
  ["foundation: commands through the homeserver double", benchFoundation],
  ["authorization: decisions with the directory on a local slapd", benchAuthorization],
  ["deploy: !deploy of a 3-group job through the Nomad double", benchDeploy],
  ["provisioning: !db create on a real PostgreSQL, !bucket create on the doubles", benchProvisioning],
  ["postgres: provisioning primitives on a real PostgreSQL", benchPostgresPrimitives],
  ["takeover: SIGKILL of the leader until the standby answers (Consul waits shown apart)", benchTakeover],
  ["alerts: event throughput, a 500-allocation node storm, critical latency", benchAlerts],
];

async function main(): Promise<void> {
  const only = process.argv[2];
  let missed = 0;
  for (const [title, run] of SECTIONS) {
    if (only && !title.startsWith(only)) continue;
    console.log(`\n## ${title}`);
    const figures = await run();
    for (const [name, value] of Object.entries(figures)) {
      const target = TARGETS.find((t) => t.figure === name);
      const verdict = target
        ? target.check(value, figures)
          ? `  ✓ target ${target.text}`
          : `  ✗ target ${target.text}`
        : "";
      if (target && !target.check(value, figures)) missed++;
      console.log(`${name.padEnd(36)} ${String(value).padStart(10)}${verdict}`);
    }
  }
  console.log(missed ? `\n${missed} target(s) missed` : "\nall targets met");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
