/**
 * Names from chat are refused before anything reaches PostgreSQL: no query, no connection, not a byte
 * on the wire (the backend talks to the server through a relay that counts connections).
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { Client } from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  generatePassword,
  InvalidNameError,
  PostgresBackend,
  validateDatabaseName,
} from "../../src/backends/postgres.js";
import { scramVerifier } from "../../src/backends/postgres/secrets.js";
import { connectTo, startThrowawayPostgres, type ThrowawayPostgres } from "../support/postgres.js";

const HOSTILE = [
  "x; DROP DATABASE y",
  '"quoted"',
  "../../etc",
  "a".repeat(300),
  "sh\u043ep", // a Cyrillic о
  "Shop",
  "SHOP",
  "1shop",
  "_shop",
  "postgres",
  "template0",
  "template1",
  "pg_x",
  "majordome",
  "majordome_admin",
  "select",
  "public",
  "",
  "shop ",
  "shop\n",
  "shop\0",
  "shop-prod",
  "shop.prod",
  "shop`",
  "ｓhop", // fullwidth s
];

describe("validateDatabaseName", () => {
  it("accepts plain lowercase names", () => {
    for (const name of ["shop", "a", "shop_2", "wiki_fr", "x".repeat(48), "selected", "users"]) {
      expect(validateDatabaseName(name), name).toBeNull();
    }
  });

  it("refuses every hostile name with a message for the room", () => {
    for (const name of HOSTILE)
      expect(validateDatabaseName(name), JSON.stringify(name)).toEqual(expect.any(String));
  });

  it("says what is wrong", () => {
    expect(validateDatabaseName("a".repeat(49))).toBe("a name has at most 48 characters (this one has 49)");
    expect(validateDatabaseName("sh\u043ep")).toBe(
      "a name uses only lowercase ASCII letters, digits and _ (found U+043E)",
    );
    expect(validateDatabaseName("x; DROP DATABASE y")).toContain("found `;`");
    expect(validateDatabaseName("x y")).toContain("found U+0020");
    expect(validateDatabaseName("../../etc")).toContain("found `.`");
    expect(validateDatabaseName("Shop")).toBe("a name is written in lowercase");
    expect(validateDatabaseName("1shop")).toBe("a name starts with a letter");
    expect(validateDatabaseName("postgres")).toBe("`postgres` is reserved by PostgreSQL");
    expect(validateDatabaseName("pg_x")).toContain("reserved by PostgreSQL");
    expect(validateDatabaseName("majordome_db")).toContain("reserved for majordome");
    expect(validateDatabaseName("select")).toBe("`select` is an SQL key word");
  });

  it("never echoes a name it could not vouch for", () => {
    for (const name of HOSTILE.filter((n) => n.length > 1 && !/^[a-z0-9_]+$/.test(n))) {
      expect(validateDatabaseName(name)).not.toContain(name);
    }
  });
});

describe("generatePassword", () => {
  it("is 32 URL- and shell-safe characters, never twice the same", () => {
    const passwords = Array.from({ length: 1_000 }, generatePassword);
    for (const password of passwords) expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(new Set(passwords).size).toBe(passwords.length);
  });

  it("yields a SCRAM-SHA-256 verifier in PostgreSQL's format", async () => {
    const verifier = await scramVerifier(generatePassword());
    expect(verifier).toMatch(
      /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/,
    );
  });
});

describe("hostile names against a real server", () => {
  let server: ThrowawayPostgres;
  let relay: Server;
  let connections = 0;
  let backend: PostgresBackend;

  beforeAll(async () => {
    server = await startThrowawayPostgres();
    relay = createServer((client: Socket) => {
      connections++;
      const upstream = connect(server.port, server.host);
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const address = relay.address();
    if (typeof address !== "object" || !address) throw new Error("no relay address");
    backend = new PostgresBackend({
      host: "127.0.0.1",
      port: address.port,
      user: server.adminUser,
      password: server.adminPassword,
      database: server.database,
    });
  });

  afterAll(async () => {
    await backend?.close();
    await new Promise((resolve) => relay?.close(resolve));
    await server?.stop();
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  const password = "a-Perfectly-fine-password-1";
  const calls: Array<[string, (b: PostgresBackend, name: string) => Promise<unknown>]> = [
    ["roleExists", (b, n) => b.roleExists(n)],
    ["databaseExists", (b, n) => b.databaseExists(n)],
    ["createRole", (b, n) => b.createRole(n, password)],
    ["setRolePassword", (b, n) => b.setRolePassword(n, password)],
    ["createDatabase (name)", (b, n) => b.createDatabase(n, "shop")],
    ["createDatabase (owner)", (b, n) => b.createDatabase("shop", n)],
    ["dropDatabase", (b, n) => b.dropDatabase(n, { force: true })],
    ["dropRole", (b, n) => b.dropRole(n)],
    ["activeSessions", (b, n) => b.activeSessions(n)],
    ["info", (b, n) => b.info(n)],
    ["canConnect (user)", (b, n) => b.canConnect(n, password, "shop")],
    ["canConnect (database)", (b, n) => b.canConnect("shop", password, n)],
  ];

  it.each(calls)("%s refuses them before any query or connection", async (_label, call) => {
    const queries = vi.spyOn(Client.prototype, "query");
    const connects = vi.spyOn(Client.prototype, "connect");
    for (const name of HOSTILE) {
      await expect(call(backend, name), JSON.stringify(name)).rejects.toBeInstanceOf(InvalidNameError);
    }
    expect(backend.serverRequests).toBe(0);
    expect(queries).not.toHaveBeenCalled();
    expect(connects).not.toHaveBeenCalled();
    expect(connections).toBe(0);
  });

  it("left the server untouched", async () => {
    const admin = await connectTo(server);
    try {
      const { rows } = await admin.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY 1");
      expect(rows.map((row) => row.datname)).toEqual(["postgres", "template0", "template1"]);
      const roles = await admin.query("SELECT 1 FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> $1", [
        server.adminUser,
      ]);
      expect(roles.rowCount).toBe(0);
    } finally {
      await admin.end();
    }
  });

  it("the relay works: a valid name does reach the server", async () => {
    expect(await backend.databaseExists("shop")).toBe(false);
    expect(backend.serverRequests).toBe(1);
    expect(connections).toBe(1);
  });
});
