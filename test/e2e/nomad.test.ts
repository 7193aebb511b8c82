/**
 * Nomad from chat, end to end: majordome in process, the Nomad double (its scheduler simulating
 * placements, health and failures), the sandbox's example job files, the homeserver double.
 */
import { execFileSync } from "node:child_process";
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startMajordome, type Majordome } from "../../src/app.js";
import { loadPolicies, Policies, parsePolicyFile } from "../../src/auth/policy.js";
import { YamlDirectory } from "../../src/auth/yaml-directory.js";
import { SystemClock } from "../../src/clock.js";
import { configSchema } from "../../src/config/schema.js";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { startNomadDouble, type NomadDouble } from "../../src/sandbox/nomad/index.js";
import { repoRoot } from "../support/paths.js";
import { DOMAIN, handledBy, startWorld, type World } from "../support/world.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const text = (e: ClientEvent) => String((e.content as { body?: string }).body ?? "");
const rel = (e: ClientEvent) =>
  (e.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } })["m.relates_to"];

interface Setup {
  w: World;
  app: Majordome;
  nomad: NomadDouble;
  jobsDir: string;
  ask(user: string, line: string): Promise<string>;
  /** The current text of a bot message (its latest edit). */
  current(eventId: string): string;
  waitText(pattern: RegExp, timeoutMs?: number): Promise<ClientEvent>;
}

async function setup(
  opts: { policies?: Policies; jobsDir?: string; gitPull?: boolean; consul?: ConsulDouble } = {},
): Promise<Setup> {
  const w = await startWorld();
  cleanups.push(() => w.close());
  const nomad = await startNomadDouble({ stepMs: 5 });
  cleanups.push(() => nomad.close());
  const jobsDir = opts.jobsDir ?? (await mkdtemp(join(tmpdir(), "majordome-jobs-")));
  if (!opts.jobsDir) await cp(join(repoRoot(), "src", "sandbox", "jobs"), jobsDir, { recursive: true });
  const app = await startMajordome({
    config: configSchema.parse({
      matrix: {
        homeserver_url: w.hs.url,
        access_token: w.bot.accessToken,
        user_domain: DOMAIN,
        command_rooms: [w.roomId],
      },
      nomad: { address: nomad.url, jobs_dir: jobsDir, git_pull: opts.gitPull ?? false },
      ...(opts.consul ? { consul: { address: opts.consul.url } } : {}),
      state: { path: await mkdtemp(join(tmpdir(), "majordome-nomad-")), fsync: false },
      timings: { sync_timeout: "2s", deploy_timeout: "20s" },
    }),
    clock: new SystemClock(),
    log: pino({ level: "silent" }),
    directory: new YamlDirectory(),
    policies: opts.policies ?? (await loadPolicies("policies")),
    http: false,
  });
  cleanups.push(() => app.stop());
  await app.synced();
  const current = (eventId: string) => {
    const edits = w.hs
      .timeline(w.roomId)
      .filter((e) => rel(e)?.rel_type === "m.replace" && rel(e)?.event_id === eventId);
    const last = edits.at(-1);
    return last
      ? String((last.content as { "m.new_content": { body: string } })["m.new_content"].body)
      : text(w.hs.getEvent(w.roomId, eventId)!);
  };
  return {
    w,
    app,
    nomad,
    jobsDir,
    current,
    async ask(user, line) {
      const command = w.say(user, line);
      await handledBy(app, command);
      return w.repliesTo(command).map(text).join("\n---\n");
    },
    waitText: (pattern, timeoutMs = 15_000) =>
      w.waitFor(
        (e) =>
          e.sender === w.bot.userId &&
          pattern.test(
            e.type === "m.room.message"
              ? rel(e)?.rel_type === "m.replace"
                ? String((e.content as { "m.new_content": { body: string } })["m.new_content"].body)
                : text(e)
              : "",
          ),
        timeoutMs,
      ),
  };
}

describe("Nomad from chat", () => {
  it("deploys a job: plan and diff first, then progress edited in place until healthy", async () => {
    const s = await setup();
    const reply = await s.ask("alice", "!deploy web");
    expect(reply).toMatch(/\*\*Plan for `web`\*\* \(`web\.hcl`\): a new job/);
    expect(reply).toMatch(/\| `web` \| 2 \|/); // two placements
    await s.waitText(/`web` is deployed and healthy/);
    await s.app.outbox.drained();
    const progress = s.w.hs
      .timeline(s.w.roomId)
      .find((e) => e.sender === s.w.bot.userId && /Deploying `web`/.test(text(e)))!;
    expect(s.current(progress.event_id)).toMatch(/✅ \*\*Deploying `web`\*\* version 0: successful/);
    expect(s.current(progress.event_id)).toMatch(/\| `web` \| 2 \| 2 \| 2 \| 0 \|/);
    expect(await s.ask("carol", "!status")).toMatch(/🟢 `web` \| service \| running/);
    expect(await s.ask("carol", "!status web")).toMatch(/Latest deployment \(version 0\): successful/);
    expect(await s.ask("alice", "!deploy web")).toMatch(/Nothing to deploy: `web` already runs this/);
  });

  it("a broken version fails with the allocation's reason; rollback brings back the stable version", async () => {
    const s = await setup();
    await s.ask("alice", "!deploy web");
    await s.waitText(/`web` is deployed and healthy/);
    s.nomad.failNextPlacement("web", "web", "image-pull");
    const reply = await s.ask("alice", "!deploy web image=nginx:9.99");
    expect(reply).toMatch(/Image: `nginx:1\.27` → `nginx:9\.99`|image: `nginx:1\.27` → `nginx:9\.99`/i);
    const why = await s.waitText(/Why `web` failed/, 20_000);
    expect(text(why)).toMatch(/Failed to pull|Driver Failure/i);
    await s.waitText(/`web`: deployment failed/);
    s.nomad.clearFailures("web");
    const back = await s.ask("alice", "!rollback web");
    expect(back).toMatch(/Roll `web` back from version 1 to 0/);
    await s.waitText(/`web` is back at version 0's spec/, 20_000);
  });

  it("scales (refused while a deployment runs), restarts one at a time, shows logs and nodes", async () => {
    const s = await setup();
    await s.ask("alice", "!deploy web");
    await s.waitText(/`web` is deployed and healthy/);
    expect(await s.ask("alice", "!scale web web 3")).toMatch(/Scaling `web` › `web` from 2 to 3/);
    await s.waitText(/`web` › `web` runs 3/);
    expect(await s.ask("alice", "!scale web nope 1")).toMatch(/has no group `nope`/);
    expect(await s.ask("alice", "!restart web")).toMatch(
      /Restarting 3 allocation\(s\) of `web`, one at a time/,
    );
    await s.waitText(/Restarted 3 allocation\(s\) of `web`/, 20_000);
    expect(await s.ask("carol", "!logs web nginx --lines 5")).toMatch(
      /`web` › `nginx` \(`[0-9a-f]{8}`, stdout\)/,
    );
    expect(await s.ask("carol", "!nodes")).toMatch(/node-1.*ready.*eligible/s);
  });

  it("logs never show the task's secrets, nor the logs of a task reading secrets it cannot check", async () => {
    const s = await setup();
    const password = "hunter2-Very/Secret";
    const taskWith = (extra: string) => `
job "leaky" {
  datacenters = ["dc1"]
  group "app" {
    task "app" {
      driver = "docker"
      config { image = "example/app:1" }
      env {
        LOG_LEVEL    = "debug"
        DB_PASSWORD  = "${password}"
        DATABASE_URL = "postgres://leaky:${encodeURIComponent(password)}@db.service.consul/leaky"
        MIRROR_URL   = "https://mirror:pull-only-9f2@mirror.example.org/"
        DB_HOST      = "db.service.consul"
      }
${extra}
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}`;
    await writeFile(join(s.jobsDir, "leaky.hcl"), taskWith(""));
    await s.ask("alice", "!deploy leaky");
    await s.waitText(/`leaky` is deployed and healthy/);
    const logs = await s.ask("carol", "!logs leaky");
    expect(logs).toContain("env DB_HOST=db.service.consul");
    expect(logs).toContain("env DB_PASSWORD=‹redacted›");
    expect(logs).toContain("env DATABASE_URL=postgres://leaky:‹redacted›@db.service.consul/leaky");
    expect(logs).toContain("env MIRROR_URL=https://mirror:‹redacted›@mirror.example.org/");
    expect(logs).not.toMatch(/hunter2|pull-only/);

    // Its secrets now come from Consul, which this majordome has no access to: no logs at all.
    const template = `
      template {
        data        = <<EOH
API_TOKEN={{ key "secrets/leaky/api_token" }}
EOH
        destination = "secrets/app.env"
        env         = true
      }`;
    await writeFile(join(s.jobsDir, "leaky.hcl"), taskWith(template));
    await s.ask("alice", "!deploy leaky");
    await s.waitText(/\*\*Deploying `leaky`\*\* version 1: successful/, 20_000);
    const refused = await s.ask("carol", "!logs leaky");
    expect(refused).toMatch(/reads secrets from Consul \(`secrets\/leaky\/api_token`\)/);
    expect(refused).toMatch(/not shown/);
    expect(refused).not.toMatch(/hunter2|\[DEBUG\]/);
  });

  it("logs never show the values a task's templates read from Consul's secrets", async () => {
    const consul = await startConsulDouble();
    cleanups.push(() => consul.close());
    const s = await setup({ consul });
    const token = "tok-4f9a1c7e2b";
    await fetch(`${consul.url}/v1/kv/secrets/echo/api_token`, { method: "PUT", body: token });
    await writeFile(
      join(s.jobsDir, "echo.hcl"),
      `job "echo" {
  datacenters = ["dc1"]
  group "app" {
    task "app" {
      driver = "docker"
      config { image = "example/echo:1" }
      # The token also reaches the app another way, which its debug output prints.
      env {
        LOG_LEVEL = "debug"
        GREETING  = "calling upstream with ${token}"
      }
      template {
        data        = <<EOH
API_TOKEN={{ key "secrets/echo/api_token" }}
MODE={{ key "configs/echo/mode" }}
EOH
        destination = "secrets/app.env"
        env         = true
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}`,
    );
    expect(await s.ask("alice", "!deploy echo")).toMatch(/Plan for `echo`/);
    await s.waitText(/`echo` is deployed and healthy/);
    const logs = await s.ask("carol", "!logs echo");
    expect(logs).toContain("env GREETING=calling upstream with ‹redacted›");
    expect(logs).not.toContain(token);
  });

  it("stop needs another admin's approval; the job stops once bob approves", async () => {
    const s = await setup();
    await s.ask("alice", "!deploy web");
    await s.waitText(/`web` is deployed and healthy/);
    const request = await s.ask("alice", "!stop web");
    expect(request).toMatch(/Approval needed.*Stop `web` \(version 0\): 2 running allocation/s);
    const requestEvent = s.w.hs.timeline(s.w.roomId).find((e) => /Approval needed/.test(text(e)))!;
    s.w.react("alice", requestEvent.event_id, "✅");
    s.w.react("bob", requestEvent.event_id, "✅");
    await s.waitText(/`web` stopped/);
    await s.nomad.settle();
    expect(await s.ask("carol", "!status")).toMatch(/`web`.*dead/);
  });

  it("a job changed in Nomad after the plan was shown is not run on approval; a new request is offered", async () => {
    const policy = new Policies(
      parsePolicyFile(
        "rules:\n  - match: [deploy]\n    allow: [admin]\n    approval: { approvers: 1, from: [admin] }\n  - match: [status, help]\n    allow: [anyone]\n",
        "test.yml",
      ),
    );
    const s = await setup({ policies: policy });
    await s.ask("alice", "!deploy web");
    const first = s.w.hs.timeline(s.w.roomId).find((e) => /Approval needed/.test(text(e)))!;
    // Someone else registers web through Nomad directly, between the plan and the approval.
    const hcl = (await readFile(join(s.jobsDir, "web.hcl"), "utf8")).replace("nginx:1.27", "nginx:1.26");
    const parsed = await (
      await fetch(`${s.nomad.url}/v1/jobs/parse`, {
        method: "POST",
        body: JSON.stringify({ JobHCL: hcl, Canonicalize: true }),
      })
    ).json();
    expect(
      (await fetch(`${s.nomad.url}/v1/jobs`, { method: "POST", body: JSON.stringify({ Job: parsed }) }))
        .status,
    ).toBe(200);
    s.w.react("bob", first.event_id, "✅");
    await s.waitText(/Not run: the plan changed since it was approved; a new request follows/);
    const second = await s.waitText(/Approval needed[\s\S]*nginx:1\.26/);
    expect(second.event_id).not.toBe(first.event_id);
  });

  it("refuses a job using filebase64(), and inlines file()", async () => {
    const s = await setup();
    await writeFile(join(s.jobsDir, "b64.hcl"), 'job "b64" {\n  meta { x = filebase64("x") }\n}\n');
    expect(await s.ask("alice", "!deploy b64")).toMatch(
      /uses filebase64\(\), which cannot be sent to Nomad's parse endpoint/,
    );
    expect(await s.ask("alice", "!deploy ../etc")).toMatch(/Bad job `\.\.\/etc`/);
  });
});

describe("Nomad from chat: canaries, failing a deployment, and job files from git", () => {
  const canaryJob = (image: string, canaries = 1) => `job "canary" {
  datacenters = ["dc1"]
  type        = "service"
  update {
    max_parallel = 1
    canary       = ${canaries}
    auto_promote = false
  }
  group "app" {
    count = 2
    task "app" {
      driver = "docker"
      config {
        image = "${image}"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
`;

  it("promotes the canaries of a running deployment, and fails another", async () => {
    const s = await setup();
    await writeFile(join(s.jobsDir, "canary.hcl"), canaryJob("app:1"));
    await s.ask("alice", "!deploy canary");
    await s.waitText(/`canary` is deployed and healthy/);
    await writeFile(join(s.jobsDir, "canary.hcl"), canaryJob("app:2"));
    await s.ask("alice", "!deploy canary");
    await s.waitText(/\| `app` \| 2 \| 1 \| 1 \| 0 \| 1\/1 \|/);
    expect(await s.ask("alice", "!promote canary")).toMatch(/Promoted the canaries of `canary` version 1/);
    await s.waitText(/`canary` is deployed and healthy/);

    await writeFile(join(s.jobsDir, "canary.hcl"), canaryJob("app:3"));
    await s.ask("alice", "!deploy canary");
    await s.waitText(/Deploying `canary`\*\* version 2: running/);
    expect(await s.ask("alice", "!fail canary")).toMatch(/deployment of `canary` version 2 is marked failed/);
    await s.waitText(/`canary`: deployment failed/);
    expect(await s.ask("alice", "!promote canary")).toMatch(/has no running deployment to promote/);
  });

  it("updates the jobs checkout with git pull --ff-only and shows the commit it read", async () => {
    const root = await mkdtemp(join(tmpdir(), "majordome-git-"));
    const git = (cwd: string, ...args: string[]) =>
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.org", ...args], {
        cwd,
        stdio: "pipe",
      })
        .toString()
        .trim();
    git(root, "init", "-q", "--bare", "origin.git");
    git(root, "clone", "-q", "origin.git", "work");
    git(root, "clone", "-q", "origin.git", "checkout");
    const work = join(root, "work");
    await writeFile(join(work, "canary.hcl"), canaryJob("app:1", 0));
    git(work, "add", ".");
    git(work, "commit", "-qm", "first");
    git(work, "push", "-q", "origin", "HEAD");
    const s = await setup({ jobsDir: join(root, "checkout"), gitPull: true });
    const first = git(work, "rev-parse", "--short=12", "HEAD");
    expect(await s.ask("alice", "!deploy canary")).toContain(`at commit \`${first}\``);
    await s.waitText(/`canary` is deployed and healthy/);
    await writeFile(join(work, "canary.hcl"), canaryJob("app:9", 0));
    git(work, "commit", "-qam", "second");
    git(work, "push", "-q", "origin", "HEAD");
    const second = git(work, "rev-parse", "--short=12", "HEAD");
    const plan = await s.ask("alice", "!deploy canary");
    expect(plan).toContain(`at commit \`${second}\``);
    expect(plan).toMatch(/image: `app:1` → `app:9`/);
    await s.waitText(/Deploying `canary`\*\* version 1: successful/);
  });
});
