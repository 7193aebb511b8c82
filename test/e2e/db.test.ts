/**
 * `!db` end to end: majordome in process, a real throwaway PostgreSQL, the Consul double for the
 * credentials, the homeserver double for the room. Every room message and log line is scanned for the
 * generated passwords.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startMajordome, type Majordome } from "../../src/app.js";
import { loadPolicies } from "../../src/auth/policy.js";
import { YamlDirectory } from "../../src/auth/yaml-directory.js";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { SystemClock } from "../../src/clock.js";
import { configSchema } from "../../src/config/schema.js";
import { startConsulDouble } from "../../src/sandbox/consul/index.js";
import { FileStateStore } from "../../src/state/file-store.js";
import { ConsulSecrets, consulClient } from "../../src/backends/consul-secrets.js";
import { ActionJournal } from "../../src/state/journal.js";
import { createDatabase } from "../../handlers/db.js";
import {
  connectTo,
  postgresConfig,
  startThrowawayPostgres,
  type ThrowawayPostgres,
} from "../support/postgres.js";
import { spawnMajordome, waitHealthy } from "../support/process.js";
import { DOMAIN, handledBy, startWorld, type World, writeWorldConfig } from "../support/world.js";

let pg: ThrowawayPostgres;
beforeAll(async () => {
  pg = await startThrowawayPostgres();
}, 60_000);
afterAll(async () => {
  await pg.stop();
});

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  w: World;
  app: Majordome;
  consul: Awaited<ReturnType<typeof startConsulDouble>>;
  logs: string[];
  stateDir: string;
}

function minimalConfig(w: World) {
  return {
    matrix: {
      homeserver_url: w.hs.url,
      access_token: w.bot.accessToken,
      user_domain: DOMAIN,
      command_rooms: [w.roomId],
    },
  };
}

async function setup(opts: { stateDir?: string; w?: World; consul?: Setup["consul"] } = {}): Promise<Setup> {
  const w = opts.w ?? (await startWorld());
  if (!opts.w) cleanups.push(() => w.close());
  const consul = opts.consul ?? (await startConsulDouble());
  if (!opts.consul) cleanups.push(() => consul.close());
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), "majordome-db-")));
  const app = await startMajordome({
    config: configSchema.parse({
      ...minimalConfig(w),
      consul: { address: consul.url },
      postgres: postgresConfig(pg),
      state: { path: stateDir, fsync: false },
      timings: { sync_timeout: "2s" },
    }),
    clock: new SystemClock(),
    log: pino({ level: "debug" }, sink),
    directory: new YamlDirectory(),
    policies: await loadPolicies("policies"),
    http: false,
  });
  cleanups.push(() => app.stop());
  await app.synced();
  return { w, app, consul, logs, stateDir };
}

const bodyOf = (e: ClientEvent) => JSON.stringify(e.content);

async function ask(s: Setup, user: string, line: string): Promise<string> {
  const command = s.w.say(user, line);
  await handledBy(s.app, command);
  const replies = s.w.repliesTo(command);
  expect(replies.length, `a reply to ${line}`).toBeGreaterThan(0);
  return replies.map((r) => String((r.content as { body: string }).body)).join("\n");
}

/** Every password majordome generated must appear nowhere but in Consul. */
function expectNoSecretLeaked(s: Setup, secrets: string[]): void {
  const room = s.w.hs.timeline(s.w.roomId).map(bodyOf).join("\n");
  const logs = s.logs.join("\n");
  for (const secret of secrets) {
    expect(room).not.toContain(secret);
    expect(logs).not.toContain(secret);
  }
}

async function canLogin(user: string, password: string, database: string): Promise<boolean> {
  try {
    const client = await connectTo(pg, { user, password, database });
    await client.end();
    return true;
  } catch {
    return false;
  }
}

describe("!db through chat, real PostgreSQL, credentials in Consul", () => {
  it("creates a database whose credentials work, are in Consul, and never in the room or logs; a second create changes nothing", async () => {
    const s = await setup();
    const reply = await ask(s, "alice", "!db create shop");
    expect(reply).toMatch(/Database `shop` created, owned by role `shop`/);
    expect(reply).toContain("secrets/shop/db_pass");
    expect(reply).toMatch(/template \{/);
    const password = s.consul.kv("secrets/shop/db_pass")!;
    expect(password).toMatch(/^[A-Za-z0-9]{32,}$/);
    expect(s.consul.kv("secrets/shop/db_user")).toBe("shop");
    expect(await canLogin("shop", password, "shop")).toBe(true);
    expect(await ask(s, "alice", "!db create shop")).toMatch(/already exists .*Nothing was changed/);
    expect(s.consul.kv("secrets/shop/db_pass")).toBe(password);
    expect(await ask(s, "carol", "!db info shop")).toMatch(/owner `shop`.*only its owner may connect/);

    const rotated = await ask(s, "alice", "!db rotate shop");
    expect(rotated).toMatch(/New password for role `shop`, written to `secrets\/shop\/db_pass`/);
    const newPassword = s.consul.kv("secrets/shop/db_pass")!;
    expect(newPassword).not.toBe(password);
    expect(await canLogin("shop", password, "shop")).toBe(false);
    expect(await canLogin("shop", newPassword, "shop")).toBe(true);
    expectNoSecretLeaked(s, [password, newPassword, pg.adminPassword]);
  });

  it.each([
    ["x; DROP DATABASE y"],
    ['"quoted"'],
    ["../../etc"],
    ["a".repeat(300)],
    ["shоp"], // a Cyrillic о
    ["Shop"],
    ["postgres"],
  ])("refuses %j before any backend call", async (hostile) => {
    const s = await setup();
    const before = s.app.services.provisioning?.postgres?.serverRequests;
    const reply = await ask(s, "alice", `!db create '${hostile.replace(/'/g, "")}'`);
    expect(reply).toMatch(/Bad name .*expected a valid name/);
    expect(s.app.services.provisioning?.postgres?.serverRequests).toBe(before);
    expect(s.consul.kv(`secrets/${hostile}/db_pass`)).toBeUndefined();
  });

  it.each(["role", "database", "verified"] as const)(
    "a failure at the %s step rolls back everything this action made",
    async (step) => {
      const s = await setup();
      const postgres = s.app.services.provisioning!.postgres!;
      const inject = { role: "createRole", database: "createDatabase", verified: "canConnect" }[
        step
      ] as "createRole";
      const original = postgres[inject].bind(postgres);
      postgres[inject] = async () => {
        throw new Error(`injected failure at ${step}`);
      };
      try {
        const reply = await ask(s, "alice", "!db create orders");
        expect(reply).toMatch(new RegExp(`injected failure at ${step}\\. Rolled back: `));
      } finally {
        postgres[inject] = original;
      }
      expect(await postgres.databaseExists("orders")).toBe(false);
      expect(await postgres.roleExists("orders")).toBe(false);
      expect(s.consul.kv("secrets/orders/db_pass")).toBeUndefined();
      expect(s.consul.kv("secrets/orders/db_user")).toBeUndefined();
    },
  );

  it("Consul unreachable: nothing is made, and the room says why", async () => {
    const s = await setup();
    s.consul.unavailable(true);
    try {
      expect(await ask(s, "alice", "!db create ledger")).toMatch(/failed/);
    } finally {
      s.consul.unavailable(false);
    }
    expect(await s.app.services.provisioning!.postgres!.roleExists("ledger")).toBe(false);
  });

  it("resumes a creation a restart interrupted after the secrets step, and says so", async () => {
    const w = await startWorld();
    cleanups.push(() => w.close());
    const consul = await startConsulDouble();
    cleanups.push(() => consul.close());
    const stateDir = await mkdtemp(join(tmpdir(), "majordome-db-"));
    // What a crash right after the first step leaves: the journal entry and the secrets; no role, no database.
    const store = await FileStateStore.open(stateDir, { fsync: false });
    const journal = new ActionJournal(store, new SystemClock());
    const secrets = new ConsulSecrets(
      consulClient({ address: consul.url }),
      configSchema.parse(minimalConfig(w)).secrets,
    );
    await journal.begin({
      id: "db-crashed",
      kind: "db create",
      args: { name: "crm", app: "crm", owner: "crm" },
      requester: "@alice:deuxfleurs.fr",
      roomId: w.roomId,
    });
    await journal.step("db-crashed", "secrets", async () => {
      await secrets.createOnly("secrets/crm/db_user", "crm");
      await secrets.createOnly("secrets/crm/db_name", "crm");
      await secrets.createOnly("secrets/crm/db_pass", "Resumed0123456789abcdefghijklmnop");
    });
    await store.close();

    const s = await setup({ stateDir, w, consul });
    const report = await w.waitFor((e) =>
      /Resumed after a restart/.test(String((e.content as { body?: string }).body)),
    );
    expect(String((report.content as { body: string }).body)).toMatch(
      /action `db-crashed`.*Database `crm` created/,
    );
    expect(await canLogin("crm", "Resumed0123456789abcdefghijklmnop", "crm")).toBe(true);
    expect((await s.app.services.journal.get("db-crashed"))?.status).toBe("succeeded");
  });

  it("drop needs another admin's approval, refuses while sessions are connected, and removes the secrets", async () => {
    const s = await setup();
    await ask(s, "alice", "!db create wiki");
    const password = s.consul.kv("secrets/wiki/db_pass")!;
    const session = await connectTo(pg, { user: "wiki", password, database: "wiki" });
    const request = s.w.say("alice", "!db drop wiki");
    const asked = await s.w.waitFor(
      (e) =>
        e.sender === s.w.bot.userId &&
        /Approval needed/.test(String((e.content as { body?: string }).body)) &&
        s.w.repliesTo(request).some((r) => r.event_id === e.event_id),
    );
    expect(String((asked.content as { body: string }).body)).toMatch(
      /Drop database `wiki`.*1 session\(s\) now/,
    );
    s.w.react("bob", asked.event_id, "✅");
    const refused = await s.w.waitFor((e) =>
      /Not dropped: 1 session/.test(String((e.content as { body?: string }).body)),
    );
    expect(refused).toBeDefined();
    await session.end();
    expect(await s.app.services.provisioning!.postgres!.databaseExists("wiki")).toBe(true);

    const again = s.w.say("alice", "!db drop wiki");
    const second = await s.w.waitFor(
      (e) =>
        e.sender === s.w.bot.userId &&
        /Approval needed/.test(String((e.content as { body?: string }).body)) &&
        s.w.repliesTo(again).some((r) => r.event_id === e.event_id),
    );
    s.w.react("bob", second.event_id, "✅");
    await s.w.waitFor((e) => /Dropped database `wiki`/.test(String((e.content as { body?: string }).body)));
    expect(await s.app.services.provisioning!.postgres!.databaseExists("wiki")).toBe(false);
    expect(s.consul.kv("secrets/wiki/db_pass")).toBeUndefined();
    expectNoSecretLeaked(s, [password]);
  });
});

describe("!db create killed with SIGKILL after each step, then restarted", () => {
  it.each(["secrets", "role", "database", "verified"])(
    "killed after %s: the restart finishes it, nothing is half-made",
    async (step) => {
      const w = await startWorld();
      cleanups.push(() => w.close());
      const consul = await startConsulDouble();
      cleanups.push(() => consul.close());
      const db = `killed_${step}`;
      const { path, healthUrl } = await writeWorldConfig(w, {
        sections: {
          consul: { address: consul.url },
          postgres: postgresConfig(pg),
        },
      });
      const first = spawnMajordome(path, { MAJORDOME_CRASH_AT: `step:${step}` });
      cleanups.push(() => first.kill());
      await waitHealthy(healthUrl);
      w.say("alice", `!db create ${db}`);
      expect(await first.exited).toBeNull();

      const second = spawnMajordome(path);
      cleanups.push(() => second.kill());
      const app = `killed-${step}`;
      const report = await w.waitFor(
        (e) =>
          /Resumed after a restart|already handled|created/.test(
            String((e.content as { body?: string }).body),
          ),
        20_000,
      );
      expect(String((report.content as { body: string }).body)).toMatch(
        new RegExp(`Database \`${db}\` created`),
      );
      const password = consul.kv(`secrets/${app}/db_pass`)!;
      expect(await canLogin(db, password, db)).toBe(true);
    },
  );
});

describe("!db create resumed after a kill between a step's effect and its journal record", () => {
  const begin = (s: Setup, id: string, name: string) =>
    s.app.services.journal.begin({
      id,
      kind: "db create",
      args: { name, app: name, owner: name },
      requester: "@alice:deuxfleurs.fr",
      roomId: s.w.roomId,
    });

  it("secrets written but not recorded: the resume keeps them (and their password) instead of failing", async () => {
    const s = await setup();
    await begin(s, "db-secrets-unrecorded", "ghost");
    const password = "Unrecorded0123456789abcdefghijklm";
    s.consul.putKv("secrets/ghost/db_user", "ghost");
    s.consul.putKv("secrets/ghost/db_name", "ghost");
    s.consul.putKv("secrets/ghost/db_pass", password);
    const text = await createDatabase(s.app.services, "db-secrets-unrecorded", {
      name: "ghost",
      app: "ghost",
      owner: "ghost",
    });
    expect(text).toMatch(/Database `ghost` created/);
    expect(await canLogin("ghost", password, "ghost")).toBe(true);
  });

  it("CREATE DATABASE made but not recorded: the resume finishes; a failure rolls back the step in progress too", async () => {
    const s = await setup();
    const { postgres } = s.app.services.provisioning!;
    const { journal } = s.app.services;
    // Finished: the database is there, its step unrecorded.
    await begin(s, "db-database-unrecorded", "phantom");
    const password = "Phantom0123456789abcdefghijklmno";
    await journal.step("db-database-unrecorded", "secrets", async () => {
      s.consul.putKv("secrets/phantom/db_user", "phantom");
      s.consul.putKv("secrets/phantom/db_name", "phantom");
      s.consul.putKv("secrets/phantom/db_pass", password);
    });
    await journal.step("db-database-unrecorded", "role", () => postgres!.createRole("phantom", password));
    await postgres!.createDatabase("phantom", "phantom");
    const args = { name: "phantom", app: "phantom", owner: "phantom" };
    expect(await createDatabase(s.app.services, "db-database-unrecorded", args)).toMatch(/created/);
    expect(await canLogin("phantom", password, "phantom")).toBe(true);

    // Rolled back: the password in Consul no longer logs in, so the verification fails; the database,
    // made by the unrecorded step, goes too, and the role and secrets with it.
    await begin(s, "db-rolled-back", "wraith");
    await journal.step("db-rolled-back", "secrets", async () => {
      s.consul.putKv("secrets/wraith/db_user", "wraith");
      s.consul.putKv("secrets/wraith/db_name", "wraith");
      s.consul.putKv("secrets/wraith/db_pass", "Wraith0123456789abcdefghijklmnop");
    });
    await journal.step("db-rolled-back", "role", () =>
      postgres!.createRole("wraith", "Other0123456789abcdefghijklmnopq"),
    );
    await postgres!.createDatabase("wraith", "wraith");
    await journal.step("db-rolled-back", "database", async () => undefined);
    await expect(
      createDatabase(s.app.services, "db-rolled-back", { name: "wraith", app: "wraith", owner: "wraith" }),
    ).rejects.toThrow(/cannot log in.*Rolled back: database wraith, role wraith, the secrets/);
    expect(await postgres!.databaseExists("wraith")).toBe(false);
    expect(await postgres!.roleExists("wraith")).toBe(false);
    expect(s.consul.kv("secrets/wraith/db_pass")).toBeUndefined();
  });
});
