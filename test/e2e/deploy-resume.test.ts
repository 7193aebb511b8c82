/**
 * A deploy that needed approval, killed while its rollout was followed: the restart follows it again
 * (never registering again) and says how it ended in the request's thread.
 */
import { cp, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startMajordome, type Majordome } from "../../src/app.js";
import { Policies, parsePolicyFile } from "../../src/auth/policy.js";
import { YamlDirectory } from "../../src/auth/yaml-directory.js";
import { SystemClock } from "../../src/clock.js";
import { configSchema } from "../../src/config/schema.js";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { startNomadDouble } from "../../src/sandbox/nomad/index.js";
import { FileStateStore } from "../../src/state/file-store.js";
import type { ActionRecord } from "../../src/state/journal.js";
import { repoRoot } from "../support/paths.js";
import { DOMAIN, handledBy, startWorld } from "../support/world.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const text = (e: ClientEvent) => String((e.content as { body?: string }).body ?? "");
const rel = (e: ClientEvent) =>
  (e.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } })["m.relates_to"];

describe("a followed deploy killed, then restarted", () => {
  it("approved: the restart follows the same rollout and ends it in the request's thread, registering once", async () => {
    const w = await startWorld();
    cleanups.push(() => w.close());
    const nomad = await startNomadDouble({ stepMs: 5 });
    cleanups.push(() => nomad.close());
    const jobsDir = await mkdtemp(join(tmpdir(), "majordome-jobs-"));
    await cp(join(repoRoot(), "src", "sandbox", "jobs"), jobsDir, { recursive: true });
    const statePath = await mkdtemp(join(tmpdir(), "majordome-deploy-resume-"));
    const policies = new Policies(
      parsePolicyFile(
        "rules:\n  - match: [deploy]\n    allow: [admin]\n    approval: { approvers: 1, from: [admin] }\n",
        "test.yml",
      ),
    );
    const start = () =>
      startMajordome({
        config: configSchema.parse({
          matrix: {
            homeserver_url: w.hs.url,
            access_token: w.bot.accessToken,
            user_domain: DOMAIN,
            command_rooms: [w.roomId],
          },
          nomad: { address: nomad.url, jobs_dir: jobsDir, git_pull: false },
          state: { path: statePath, fsync: false },
          timings: { sync_timeout: "2s", deploy_timeout: "20s" },
        }),
        clock: new SystemClock(),
        log: pino({ level: "silent" }),
        directory: new YamlDirectory(),
        policies,
        http: false,
      });
    let app: Majordome = await start();
    cleanups.push(() => app.stop());
    await app.synced();

    const command = w.say("alice", "!deploy web");
    await handledBy(app, command);
    const request = w.hs.timeline(w.roomId).find((e) => /Approval needed/.test(text(e)))!;
    w.react("bob", request.event_id, "✅");
    await w.waitFor((e) => /`web` is deployed and healthy/.test(text(e)), 15_000);
    await app.stop();

    // As a kill during the follow-up would have left it: the deploy's action still running.
    const store = await FileStateStore.open(statePath, { fsync: false });
    const actions = (await store.list<ActionRecord>("journal/")).filter((e) =>
      e.key.startsWith("journal/deploy-"),
    );
    expect(actions).toHaveLength(1);
    const { endedAt: _ended, ...running } = actions[0]!.value;
    expect(running.steps.map((s) => s.name)).toEqual(["registered"]);
    await store.set(actions[0]!.key, { ...running, status: "running" });
    await store.close();

    app = await start();
    const resumed = await w.waitFor(
      (e) => /Resumed after a restart[\s\S]*`web` is deployed and healthy/.test(text(e)),
      15_000,
    );
    expect(rel(resumed)).toMatchObject({ rel_type: "m.thread", event_id: request.event_id });
    const job = (await (await fetch(`${nomad.url}/v1/job/web`)).json()) as { Version: number };
    expect(job.Version).toBe(0);
  });
});
