/**
 * deploy/majordome.hcl, checked as far as this machine allows: parsed with HashiCorp's HCL parser
 * (@cdktf/hcl2json), its templates compared with the secrets config.example.yml needs, its rendered
 * config validated by majordome's own loader, its health check against the real HTTP server, and the
 * whole job through the Nomad double's /v1/jobs/parse.
 */
import { parse as hclToJson } from "@cdktf/hcl2json";
import { Registry } from "prom-client";
import { parse as parseYaml } from "yaml";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { NomadClient } from "../../src/backends/nomad/index.js";
import { SystemClock } from "../../src/clock.js";
import { duration } from "../../src/config/duration.js";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { startHttpServer } from "../../src/http/server.js";
import { splitTemplate } from "../../src/sandbox/nomad/hcl-eval.js";
import { startNomadDouble } from "../../src/sandbox/nomad/index.js";
import { configDefaults, imageHealthcheck, portOf, readRepoFile } from "./image.js";

type Body = Record<string, unknown>;

const JOB_FILE = "deploy/majordome.hcl";
const SECRETS_PREFIX = "secrets/majordome/";

const blocks = (body: Body, key: string): Body[] => (body[key] as Body[] | undefined) ?? [];
const block = (body: Body, key: string): Body => {
  const [only, ...more] = blocks(body, key);
  if (!only || more.length > 0) throw new Error(`expected one ${key} block`);
  return only;
};
const labelled = (body: Body, key: string): Array<[string, Body]> =>
  Object.entries((body[key] ?? {}) as Record<string, Body[]>).flatMap(([label, list]) =>
    list.map((b): [string, Body] => [label, b]),
  );
const ms = (value: unknown): number => duration.parse(value);

/** An HCL string's text once HCL has rendered it (`$${` → `${`); refuses HCL interpolations. */
function hclText(value: unknown): string {
  const parts = splitTemplate(String(value));
  const interpolated = parts.filter((p) => p.kind !== "literal");
  if (interpolated.length > 0)
    throw new Error(`unexpected HCL interpolation: ${JSON.stringify(interpolated)}`);
  return parts.map((p) => p.text).join("");
}

/** Config paths (a.b.c) whose value in a parsed YAML document is exactly `${NAME}`, with NAME. */
function environmentReferences(value: unknown, path: string[] = []): Map<string, string> {
  const found = new Map<string, string>();
  if (typeof value === "string") {
    const name = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value)?.[1];
    if (name) found.set(path.join("."), name);
  } else if (typeof value === "object" && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      for (const [p, n] of environmentReferences(child, [...path, key])) found.set(p, n);
    }
  }
  return found;
}

/** Values of keys ending in `_file` (TLS material, secrets given as files). */
function fileReferences(value: unknown): string[] {
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([key, child]) =>
    key.endsWith("_file") && typeof child === "string" ? [child] : fileReferences(child),
  );
}

const KEY_CALL = /\{\{\s*key\s+"([^"]+)"\s*\}\}/g;

interface Job {
  source: string;
  job: Body;
  group: Body;
  task: Body;
  templates: Body[];
  /** NAME → Consul key, from the template rendered as environment variables. */
  envKeys: Map<string, string>;
  configText: string;
  config: Config;
}

async function readJob(): Promise<Job> {
  const source = readRepoFile(JOB_FILE);
  const doc = (await hclToJson(JOB_FILE, source)) as Body;
  const jobs = labelled(doc, "job");
  expect(jobs.map(([name]) => name)).toEqual(["majordome"]);
  const job = jobs[0]![1];
  const [[, group] = ["", {}], ...otherGroups] = labelled(job, "group");
  expect(otherGroups).toEqual([]);
  const [[, task] = ["", {}], ...otherTasks] = labelled(group, "task");
  expect(otherTasks).toEqual([]);
  const templates = blocks(task, "template");

  const envTemplates = templates.filter((t) => t.env === true);
  expect(envTemplates).toHaveLength(1);
  const envKeys = new Map<string, string>();
  for (const line of hclText(envTemplates[0]!.data)
    .split("\n")
    .filter((l) => l.trim() !== "")) {
    const match = /^([A-Z_][A-Z0-9_]*)=\{\{\s*key\s+"([^"]+)"\s*\}\}$/.exec(line.trim());
    if (!match) throw new Error(`unexpected line in the environment template: ${line}`);
    envKeys.set(match[1]!, match[2]!);
  }

  const configTemplate = templates.find((t) => String(t.destination).endsWith("config.yml"));
  if (!configTemplate) throw new Error("no template renders the config file");
  const configText = hclText(configTemplate.data);
  const env = Object.fromEntries([...envKeys.keys()].map((name) => [name, `value-of-${name}`]));
  const config = parseConfig(configText, { source: JOB_FILE, env });
  return { source, job, group, task, templates, envKeys, configText, config };
}

let job: Job;
beforeAll(async () => {
  job = await readJob();
});

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe("deploy/majordome.hcl", () => {
  it("renders every secret config.example.yml reads from the environment, from secrets/majordome/", () => {
    const needed = environmentReferences(parseYaml(readRepoFile("config.example.yml")));
    expect(needed.size).toBeGreaterThan(0);
    const given = environmentReferences(parseYaml(job.configText));
    for (const [path] of needed) {
      const name = given.get(path);
      expect(name, `${path} is read from the environment`).toBeDefined();
      expect(job.envKeys.get(name!), `${name} for ${path}`).toBe(
        `${SECRETS_PREFIX}${path.replaceAll(".", "/")}`,
      );
    }
    // The rendered config says the same: each secret is the value the template gave its variable.
    expect(job.config.matrix.access_token).toBe(`value-of-${given.get("matrix.access_token")}`);
  });

  it("sets exactly the environment variables the config reads", () => {
    const read = new Set([...job.configText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]));
    expect([...read].sort()).toEqual([...job.envKeys.keys()].sort());
  });

  it("renders every file the config names from Consul, and no template is left unused", () => {
    const files = fileReferences(parseYaml(job.configText));
    expect(files.length).toBeGreaterThan(0);
    const fileTemplates = job.templates.filter(
      (t) => t.env !== true && !String(t.destination).endsWith("config.yml"),
    );
    for (const file of files) {
      // The task's secrets/ directory is /secrets in the container.
      expect(file).toMatch(/^\/secrets\/[\w.-]+$/);
      const name = file.slice("/secrets/".length);
      const template = fileTemplates.find((t) => t.destination === `secrets/${name}`);
      expect(template, `a template renders ${file}`).toBeDefined();
      expect([...String(template!.data).matchAll(KEY_CALL)].map((m) => m[1])).toEqual([
        `${SECRETS_PREFIX}${name}`,
      ]);
    }
    expect(fileTemplates.map((t) => `/${String(t.destination)}`).sort()).toEqual([...files].sort());
  });

  it("reads secrets from secrets/majordome/ only, never into the config file itself", () => {
    const keys = job.templates.flatMap((t) => [...String(t.data).matchAll(KEY_CALL)].map((m) => m[1]!));
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key.startsWith(SECRETS_PREFIX), key).toBe(true);
    expect(job.configText).not.toMatch(/\{\{/);
    for (const template of job.templates.filter(
      (t) => t.env === true || String(t.destination).includes(".key"),
    ))
      expect(String(template.destination)).toMatch(/^secrets\//);
  });

  it("runs the config it renders, with the state in Consul and one active instance", () => {
    const args = (block(job.task, "config").args as string[]) ?? [];
    const configTemplate = job.templates.find((t) => String(t.destination).endsWith("config.yml"))!;
    expect(args).toEqual(["run", `/${String(configTemplate.destination)}`]);
    expect(job.config.state.backend).toBe("consul");
    expect(job.config.state.leader.enabled).toBe(true);
    expect(job.config.consul).toBeDefined();
    expect(job.config.matrix.encryption).toBe(false);
  });

  it("checks the path majordome serves as /health, on the port it listens on", async () => {
    const service = block(job.group, "service");
    const check = block(service, "check");
    expect(check.type).toBe("http");
    const server = await startHttpServer(
      "127.0.0.1:0",
      async () => ({ healthy: true, role: "standby", reasons: [] }),
      new Registry(),
    );
    closers.push(() => server.close());
    const answer = await fetch(`${server.url}${String(check.path)}`);
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { role: string }).role).toBe("standby");

    const ports = labelled(block(job.group, "network"), "port");
    const port = ports.find(([label]) => label === service.port);
    expect(port, `network port "${String(service.port)}"`).toBeDefined();
    expect(String(port![1].to)).toBe(portOf(job.config.http.listen));
    // Consul reaches the container through the mapped port: majordome must not listen on loopback only.
    expect(job.config.http.listen).toMatch(/^0\.0\.0\.0:/);
    expect(block(job.task, "config").ports).toEqual([service.port]);
  });

  it("agrees with the image's HEALTHCHECK on port and path", () => {
    const { url } = imageHealthcheck();
    const service = block(job.group, "service");
    const [, port] = labelled(block(job.group, "network"), "port").find(([label]) => label === service.port)!;
    expect(url.pathname).toBe(block(service, "check").path);
    expect(url.port).toBe(String(port.to));
  });

  it("gives a graceful stop more time than majordome takes, within Nomad's default cap", () => {
    const kill = ms(job.task.kill_timeout);
    expect(kill).toBeGreaterThan(configDefaults().timings.shutdown_grace);
    expect(kill).toBeGreaterThan(job.config.timings.shutdown_grace);
    // Nomad clients cap kill_timeout at max_kill_timeout, 30s unless their config raises it.
    expect(kill).toBeLessThanOrEqual(30_000);
    expect(job.task.kill_signal).toBe("SIGTERM");
  });

  it("runs two instances on different nodes, replaced one at a time, restarted and rescheduled", () => {
    expect(job.group.count).toBe(2);
    const constraints = blocks(job.group, "constraint");
    expect(constraints.some((c) => c.operator === "distinct_hosts" && String(c.value) === "true")).toBe(true);
    const update = block(job.job, "update");
    expect(update.max_parallel).toBe(1);
    expect(update.health_check).toBe("checks");
    expect(ms(update.healthy_deadline)).toBeLessThan(ms(update.progress_deadline));
    expect(block(job.group, "restart").mode).toBe("delay");
    expect(block(job.group, "reschedule").unlimited).toBe(true);
    const resources = block(job.task, "resources");
    expect(Number(resources.memory)).toBeGreaterThan(0);
    expect(Number(resources.cpu)).toBeGreaterThan(0);
    expect(block(job.task, "config").image).toBe("${var.image}");
  });

  it("parses through the Nomad double's /v1/jobs/parse into the same job", async () => {
    const nomad = await startNomadDouble();
    closers.push(() => nomad.close());
    const client = new NomadClient({
      address: nomad.url,
      namespace: "default",
      timeoutMs: 5_000,
      clock: new SystemClock(),
    });
    const parsed = (await client.parse(job.source, {
      image: "registry.example/majordome:1.2.3",
    })) as unknown as {
      ID: string;
      TaskGroups: Array<{
        Count: number;
        Services: Array<{ PortLabel: string; Checks: Array<{ Path: string }> }>;
        Tasks: Array<{
          KillTimeout: number;
          Config: { image: string; args: string[] };
          Templates: Array<{ DestPath: string; EmbeddedTmpl: string; Envvars: boolean }>;
        }>;
      }>;
    };
    expect(parsed.ID).toBe("majordome");
    const [group] = parsed.TaskGroups;
    expect(group?.Count).toBe(2);
    expect(group?.Services[0]?.Checks[0]?.Path).toBe(block(block(job.group, "service"), "check").path);
    const task = group!.Tasks[0]!;
    expect(task.KillTimeout).toBe(ms(job.task.kill_timeout) * 1e6);
    expect(task.Config.image).toBe("registry.example/majordome:1.2.3");
    expect(task.Templates).toHaveLength(job.templates.length);
    const config = task.Templates.find((t) => t.DestPath.endsWith("config.yml"));
    expect(config?.EmbeddedTmpl).toBe(job.configText);
  });
});
