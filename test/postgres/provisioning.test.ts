/** The `!db` primitives against a real PostgreSQL: roles, databases, who may connect, rotation, drops. */
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import type { Client } from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  generatePassword,
  PostgresBackend,
  PostgresBackendError,
  type PostgresBackendOptions,
} from "../../src/backends/postgres.js";
import { connectTo, startThrowawayPostgres, type ThrowawayPostgres } from "../support/postgres.js";

let server: ThrowawayPostgres;
let admin: Client;
let backend: PostgresBackend;
let logs = "";
const clients: Client[] = [];
const backends: PostgresBackend[] = [];

function backendFor(overrides: Partial<PostgresBackendOptions> = {}): PostgresBackend {
  const logger = pino(
    { level: "trace" },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs += chunk.toString();
        done();
      },
    }),
  );
  const created = new PostgresBackend({
    host: server.host,
    port: server.port,
    user: server.adminUser,
    password: server.adminPassword,
    database: server.database,
    logger,
    ...overrides,
  });
  backends.push(created);
  return created;
}

async function session(user: string, password: string, database: string): Promise<Client> {
  const client = await connectTo(server, { user, password, database });
  clients.push(client);
  return client;
}

async function provision(name: string): Promise<string> {
  const password = generatePassword();
  await backend.createRole(name, password);
  await backend.createDatabase(name, name);
  return password;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(error instanceof Error)) throw new Error("expected a rejection");
  return error;
}

beforeAll(async () => {
  server = await startThrowawayPostgres();
  admin = await connectTo(server);
  backend = backendFor();
  // Every statement in the server's log: the plain passwords must not be there either.
  await admin.query("ALTER SYSTEM SET log_statement = 'all'");
  await admin.query("SELECT pg_reload_conf()");
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
  await Promise.all(backends.map((b) => b.close()));
  await admin?.end();
  await server?.stop();
});

describe("create", () => {
  it("makes a login role whose password the server keeps as a SCRAM verifier", async () => {
    const password = generatePassword();
    await backend.createRole("alice_wiki", password);
    expect(await backend.roleExists("alice_wiki")).toBe(true);
    const { rows } = await admin.query<{ rolpassword: string; rolcanlogin: boolean; rolsuper: boolean }>(
      "SELECT rolpassword, rolcanlogin, rolsuper FROM pg_authid WHERE rolname = 'alice_wiki'",
    );
    expect(rows[0]?.rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(rows[0]).toMatchObject({ rolcanlogin: true, rolsuper: false });
  });

  it("makes a database only its owner can connect to", async () => {
    const password = await provision("shop");
    const other = generatePassword();
    await backend.createRole("intruder", other);
    expect(await backend.databaseExists("shop")).toBe(true);

    expect(await backend.canConnect("shop", password, "shop")).toBe(true);
    const owner = await session("shop", password, "shop");
    const { rows } = await owner.query<{ user: string }>("SELECT current_user AS user");
    expect(rows[0]?.user).toBe("shop");
    await owner.query("CREATE TABLE orders (id int)"); // the owner owns the public schema

    expect(await backend.canConnect("intruder", other, "shop")).toBe(false);
    await expect(
      connectTo(server, { user: "intruder", password: other, database: "shop" }),
    ).rejects.toMatchObject({
      code: "42501",
      message: expect.stringContaining("permission denied for database"),
    });
    expect(await backend.canConnect("shop", "not-the-password-at-all", "shop")).toBe(false);
  });

  it("says clearly what already exists or is missing", async () => {
    await provision("dupe");
    await expect(backend.createRole("dupe", generatePassword())).rejects.toThrow("role dupe already exists");
    await expect(backend.createDatabase("dupe", "dupe")).rejects.toThrow("database dupe already exists");
    await expect(backend.createDatabase("orphan", "ghost")).rejects.toThrow("role ghost does not exist");
    expect(await backend.databaseExists("orphan")).toBe(false);
    await expect(backend.dropDatabase("nothing")).rejects.toThrow("database nothing does not exist");
    await expect(backend.setRolePassword("ghost", generatePassword())).rejects.toThrow(
      "role ghost does not exist",
    );
    await expect(backend.dropRole("ghost")).rejects.toThrow("role ghost does not exist");
  });

  it("leaves the cluster's privileged roles alone", async () => {
    await admin.query("CREATE ROLE operator LOGIN SUPERUSER");
    await expect(backend.setRolePassword("operator", generatePassword())).rejects.toThrow(
      "role operator is privileged: majordome does not manage it",
    );
    await expect(backend.dropRole("operator")).rejects.toThrow("role operator is privileged");
  });
});

describe("rotate", () => {
  it("replaces the password: the old one fails, the new one works", async () => {
    const old = await provision("rotated");
    const fresh = generatePassword();
    await backend.setRolePassword("rotated", fresh);
    expect(await backend.canConnect("rotated", old, "rotated")).toBe(false);
    expect(await backend.canConnect("rotated", fresh, "rotated")).toBe(true);
  });
});

describe("drop", () => {
  it("refuses while sessions are open, names how many, and forces them out when told", async () => {
    const password = await provision("busy");
    const first = await session("busy", password, "busy");
    await session("busy", password, "busy");
    expect(await backend.activeSessions("busy")).toBe(2);

    await expect(backend.dropDatabase("busy")).rejects.toThrow(
      "database busy is still in use: 2 sessions (drop it with force to end them)",
    );
    await expect(backend.dropRole("busy")).rejects.toThrow("role busy is still connected: 2 sessions");
    expect((await first.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);

    await backend.dropDatabase("busy", { force: true });
    expect(await backend.databaseExists("busy")).toBe(false);
    await expect(first.query("SELECT 1")).rejects.toThrow();
    await backend.dropRole("busy");
    expect(await backend.roleExists("busy")).toBe(false);
  });

  it("refuses to drop a role that still owns its database", async () => {
    await provision("owner");
    await expect(backend.dropRole("owner")).rejects.toThrow(
      "role owner still owns or may use objects: owner of database owner",
    );
    await backend.dropDatabase("owner");
    await backend.dropRole("owner");
    expect(await backend.roleExists("owner")).toBe(false);
  });
});

describe("list and info", () => {
  it("lists the databases with owner and size, without templates and postgres", async () => {
    await provision("listed");
    const listed = await backend.listDatabases();
    const names = listed.map((db) => db.name);
    expect(names).toEqual([...names].sort());
    expect(names).not.toContain("postgres");
    expect(names).not.toContain("template0");
    expect(names).not.toContain("template1");
    expect(listed.find((db) => db.name === "listed")).toEqual({
      name: "listed",
      owner: "listed",
      sizeBytes: expect.any(Number),
    });
    for (const db of listed) expect(db.sizeBytes).toBeGreaterThan(1_000_000);
  });

  it("gives a database's figures", async () => {
    const password = await provision("figures");
    const before = await backend.info("figures");
    expect(before).toEqual({
      name: "figures",
      owner: "figures",
      sizeBytes: expect.any(Number),
      sessions: 0,
      encoding: "UTF8",
      createdWithConnectRevoked: true,
    });

    const owner = await session("figures", password, "figures");
    await session("figures", password, "figures");
    await owner.query("CREATE TABLE blob AS SELECT repeat('x', 1000) AS x FROM generate_series(1, 5000)");
    const after = await backend.info("figures");
    expect(after?.sessions).toBe(2);
    expect(after?.sizeBytes).toBeGreaterThan((before?.sizeBytes ?? 0) + 4_000_000);
  });

  it("tells a database anyone may connect to from one majordome created", async () => {
    await admin.query("CREATE DATABASE legacy");
    expect((await backend.info("legacy"))?.createdWithConnectRevoked).toBe(false);
    expect(await backend.info("missing")).toBeNull();
  });

  it("reports the server's version", async () => {
    expect(await backend.serverVersion()).toMatch(/^\d+(\.\d+)?/);
  });
});

describe("secrets", () => {
  it("never puts a password in an error, a log line or the server's log", async () => {
    const passwords: string[] = [];
    const secret = () => {
      passwords.push(generatePassword());
      return passwords[passwords.length - 1] ?? "";
    };
    const messages: string[] = [];
    const collect = async (promise: Promise<unknown>) => {
      const error = await failure(promise);
      messages.push(error.message, error.stack ?? "", JSON.stringify(error));
    };

    const own = secret();
    await backend.createRole("secretive", own);
    await backend.createDatabase("secretive", "secretive");
    await backend.setRolePassword("secretive", secret());
    await backend.canConnect("secretive", own, "secretive");
    await collect(backend.createRole("secretive", secret()));
    await collect(backend.setRolePassword("ghost", secret()));
    await collect(backend.createRole("shorty", "tiny-pw"));
    await collect(backend.setRolePassword("secretive", `${secret()}\u00e9`));
    const wrongAdmin = backendFor({ password: secret() });
    await collect(wrongAdmin.listDatabases());
    const nowhere = backendFor({ port: 1, password: secret() });
    await collect(nowhere.canConnect("secretive", secret(), "secretive"));

    expect(messages.join("\n")).toContain("refused majordome's login");
    expect(messages.join("\n")).toContain("a password has 12 to 256 characters");
    const serverLog = readFileSync(server.logFile, "utf8");
    expect(serverLog).toContain('CREATE ROLE "secretive"');
    expect(logs).toContain('"op":"createRole"');
    for (const password of [...passwords, "tiny-pw"]) {
      for (const text of [...messages, logs, serverLog]) expect(text).not.toContain(password);
    }
  });

  it("errors are the backend's own, with the SQLSTATE", async () => {
    const error = await failure(backend.createDatabase("shop", "shop"));
    expect(error).toBeInstanceOf(PostgresBackendError);
    expect(error).toMatchObject({ sqlState: "42P04" });
  });
});
