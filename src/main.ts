#!/usr/bin/env node
import "./quiet-deprecations.js";
import { parseArgs } from "node:util";
import { LdapDirectory } from "./auth/ldap-directory.js";
import { YamlDirectory } from "./auth/yaml-directory.js";
import type { Directory } from "./auth/directory.js";
import { SystemClock, systemClock, type Clock } from "./clock.js";
import { ConfigError, loadConfigFile } from "./config/load.js";
import type { Config } from "./config/schema.js";
import { createLogger } from "./log.js";
import { tlsConnectOptions } from "./backends/tls.js";
import { StoppedAsStandby, startMajordome, type Majordome } from "./app.js";

/** Exit code of an instance that lost the leader lock (EX_TEMPFAIL: Nomad restarts it). */
const DEMOTED_EXIT_CODE = 75;

const USAGE = `majordome — ChatOps for the collective's cluster

  majordome run [config.yml]            run the bot (default config: ./config.yml)
  majordome check-config [config.yml]   validate a config file, exit 0 if valid, 1 if not
  majordome sandbox [--speed N] [--state DIR] [--directory FILE] [--policies DIR] [--echo] [--log-level L]
                                        talk to majordome from the terminal, no cluster needed
  majordome doubles [--ports-file FILE] [--speed N]
                                        the homeserver, Nomad, Consul and Garage doubles in one process, for
                                        several majordome processes and a test harness (until SIGTERM)
`;

async function main(argv: string[]): Promise<number> {
  const [command = "help", ...rest] = argv;
  switch (command) {
    case "run":
      return run(rest[0] ?? "config.yml");
    case "check-config":
      return checkConfig(rest[0] ?? "config.yml");
    case "sandbox":
      return sandbox(rest);
    case "doubles":
      return doubles(rest);
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

function readConfig(path: string): Config | undefined {
  try {
    return loadConfigFile(path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(error.message + "\n");
    return undefined;
  }
}

function checkConfig(path: string): number {
  const config = readConfig(path);
  if (!config) return 1;
  process.stdout.write(`${path}: valid\n`);
  return 0;
}

async function directoryFrom(config: Config): Promise<Directory> {
  if (config.directory.kind === "yaml") {
    if (!config.directory.yaml_path)
      throw new Error("directory.kind is yaml but directory.yaml_path is not set");
    return YamlDirectory.fromFile(config.directory.yaml_path);
  }
  const ldap = config.ldap;
  if (!ldap) throw new Error("directory.kind is ldap but there is no ldap section");
  return new LdapDirectory({
    url: ldap.url,
    bindDn: ldap.bind_dn,
    bindPassword: ldap.bind_password,
    userBase: ldap.user_base,
    groupBase: ldap.group_base,
    userNameAttribute: ldap.user_name_attribute,
    groupNameAttribute: ldap.group_name_attribute,
    memberOfAttribute: ldap.member_of_attribute,
    searchGroupsByMember: ldap.search_groups_by_member,
    cacheTtlMs: ldap.cache_ttl,
    timeoutMs: ldap.timeout,
    clock: systemClock,
    ...(ldap.tls ? { tlsOptions: tlsConnectOptions(ldap.tls) } : {}),
  });
}

/**
 * For tests only: MAJORDOME_CLOCK_SPEED=N runs majordome's clock N times faster than real time. Consul
 * refuses session TTLs under 10 s; a test runs the Consul double with timeScale 1/N and majordome at N,
 * so that TTLs and lock delays pass in a fraction of a second on both sides. MAJORDOME_CLOCK_ORIGIN (ms
 * since the epoch) makes several such processes tell the same time.
 */
function clockFromEnv(): Clock {
  const raw = process.env.MAJORDOME_CLOCK_SPEED;
  if (raw === undefined || raw === "") return systemClock;
  const speed = Number(raw);
  if (!(speed > 0)) throw new Error(`MAJORDOME_CLOCK_SPEED must be a positive number, got "${raw}"`);
  const origin = Number(process.env.MAJORDOME_CLOCK_ORIGIN ?? Date.now());
  if (!Number.isFinite(origin))
    throw new Error("MAJORDOME_CLOCK_ORIGIN must be milliseconds since the epoch");
  return new SystemClock(speed, origin);
}

async function run(path: string): Promise<number> {
  const config = readConfig(path);
  if (!config) return 1;
  const clock = clockFromEnv();
  const log = createLogger(config.log.level);
  const stopping = new AbortController();
  const stopped = new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, "stopping");
      stopping.abort();
      resolve();
    };
    process.once("SIGTERM", shutdown);
    process.once("SIGINT", shutdown);
  });
  let app: Majordome;
  try {
    app = await startMajordome({
      config,
      clock,
      log,
      directory: await directoryFrom(config),
      signal: stopping.signal,
      // A deposed leader cannot trust what it holds in memory: it exits at once, and Nomad restarts it
      // as a standby. Its unfinished actions are in the journal; the new leader resumes them.
      onDemoted: () => log.flush(() => process.exit(DEMOTED_EXIT_CODE)),
    });
  } catch (error) {
    if (!(error instanceof StoppedAsStandby)) throw error;
    log.flush(() => process.exit(0));
    return 0;
  }
  await stopped;
  await app.stop();
  // The SDK's last long-poll sync cannot be cancelled; nothing is left to do, so do not wait for it.
  log.flush(() => process.exit(0));
  return 0;
}

async function sandbox(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      speed: { type: "string", default: "1" },
      state: { type: "string" },
      directory: { type: "string" },
      echo: { type: "boolean", default: !process.stdin.isTTY },
      "log-level": { type: "string", default: "warn" },
      policies: { type: "string", default: "policies" },
    },
  });
  const speed = Number(values.speed);
  if (!(speed > 0)) {
    process.stderr.write(`--speed must be a positive number, got "${values.speed}"\n`);
    return 2;
  }
  if (process.stdin.isTTY) {
    process.stdout.write(
      "majordome sandbox — type as a user, e.g. `alice: !help`, `bob: +✅ 3`, `sim: help`; Ctrl-D to quit.\n",
    );
  }
  // The doubles load only for the sandbox and `doubles`: `run` never pays for them.
  const { runSandbox } = await import("./sandbox/run.js");
  await runSandbox({
    input: process.stdin,
    output: process.stdout,
    speed,
    directory: values.directory ? await YamlDirectory.fromFile(values.directory) : new YamlDirectory(),
    ...(values.state ? { stateDir: values.state } : {}),
    echo: values.echo ?? false,
    logLevel: values["log-level"] ?? "warn",
    policiesDir: values.policies ?? "policies",
  });
  return 0;
}

async function doubles(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { "ports-file": { type: "string" }, speed: { type: "string", default: "1" } },
  });
  const speed = Number(values.speed);
  if (!(speed > 0)) {
    process.stderr.write(`--speed must be a positive number, got "${values.speed}"\n`);
    return 2;
  }
  const portsFile = values["ports-file"];
  const { serveDoubles } = await import("./sandbox/standalone.js");
  await serveDoubles({ speed, ...(portsFile ? { portsFile } : {}) }, (line) =>
    process.stdout.write(line + "\n"),
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`majordome: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
