/** PostgreSQL going away and coming back, and the throwaway server itself. */
import { existsSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresBackend, PostgresUnreachableError, generatePassword } from "../../src/backends/postgres.js";
import {
  connectTo,
  findPostgresBinaries,
  startThrowawayPostgres,
  type ThrowawayPostgres,
} from "../support/postgres.js";

let server: ThrowawayPostgres;
let backend: PostgresBackend;
const backends: PostgresBackend[] = [];
const sockets: Socket[] = [];
let silent: Server | undefined;

function backendAt(port: number, connectTimeoutMs = 2_000): PostgresBackend {
  const created = new PostgresBackend({
    host: server.host,
    port,
    user: server.adminUser,
    password: server.adminPassword,
    database: server.database,
    connectTimeoutMs,
  });
  backends.push(created);
  return created;
}

async function unreachable(promise: Promise<unknown>): Promise<PostgresUnreachableError> {
  const error: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PostgresUnreachableError);
  return error as PostgresUnreachableError;
}

beforeAll(async () => {
  server = await startThrowawayPostgres();
  backend = backendAt(server.port);
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => (silent ? silent.close(resolve) : resolve(undefined)));
  await Promise.all(backends.map((b) => b.close()));
  await server?.stop();
});

describe("the throwaway server", () => {
  it("listens on 127.0.0.1 only, with SCRAM passwords, no fsync", async () => {
    const admin = await connectTo(server);
    try {
      const settings = await admin.query<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings
          WHERE name IN ('listen_addresses', 'password_encryption', 'fsync', 'port') ORDER BY name`,
      );
      expect(Object.fromEntries(settings.rows.map((row) => [row.name, row.setting]))).toEqual({
        fsync: "off",
        listen_addresses: "127.0.0.1",
        password_encryption: "scram-sha-256",
        port: String(server.port),
      });
      const hba = await admin.query<{ type: string; address: string | null; auth_method: string }>(
        "SELECT type, address, auth_method FROM pg_hba_file_rules WHERE type = 'host'",
      );
      expect(hba.rows).toEqual([{ type: "host", address: "127.0.0.1", auth_method: "scram-sha-256" }]);
      const role = await admin.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
      expect(role.rows).toEqual([{ rolsuper: true }]);
    } finally {
      await admin.end();
    }
    expect(server.adminUser).toBe("majordome_admin");
    expect(server.connectionString).toBe(
      `postgresql://majordome_admin:${encodeURIComponent(server.adminPassword)}@127.0.0.1:${server.port}/postgres`,
    );
    await expect(connectTo(server, { password: "wrong-password" })).rejects.toMatchObject({ code: "28P01" });
  });

  it("finds the binaries", async () => {
    const dir = await findPostgresBinaries();
    expect(dir).not.toBeNull();
    for (const binary of ["initdb", "pg_ctl", "postgres"]) expect(existsSync(`${dir}/${binary}`)).toBe(true);
  });

  it("starts in about a second and removes its temp dir when stopped", async () => {
    const start = performance.now();
    const other = await startThrowawayPostgres();
    const elapsed = performance.now() - start;
    expect(elapsed).toBeLessThan(5_000);
    const dir = dirname(other.logFile);
    expect(existsSync(dir)).toBe(true);
    await other.stop();
    expect(existsSync(dir)).toBe(false);
  });
});

describe("outages", () => {
  it("says PostgreSQL is unreachable at host:port while it is down, and works again after restart", async () => {
    expect(await backend.databaseExists("shop")).toBe(false); // a pooled connection is now open
    await server.kill();
    const error = await unreachable(backend.listDatabases());
    expect(error.message).toMatch(
      new RegExp(`^PostgreSQL is unreachable at 127\\.0\\.0\\.1:${server.port}: `),
    );
    await unreachable(backend.canConnect("shop", generatePassword(), "shop"));
    await unreachable(backend.createRole("shop", generatePassword()));

    await server.restart();
    const password = generatePassword();
    await backend.createRole("shop", password);
    await backend.createDatabase("shop", "shop");
    expect(await backend.canConnect("shop", password, "shop")).toBe(true);
  });

  it("survives a restart between two commands without an error", async () => {
    expect(await backend.databaseExists("shop")).toBe(true);
    await server.restart();
    expect(await backend.databaseExists("shop")).toBe(true);
    expect((await backend.listDatabases()).map((db) => db.name)).toEqual(["shop"]);
  });

  it("names a refused connection", async () => {
    const error = await unreachable(backendAt(1).serverVersion());
    expect(error.message).toBe("PostgreSQL is unreachable at 127.0.0.1:1: connection refused");
  });

  it("gives up on a server that accepts connections but never answers", async () => {
    silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent?.listen(0, "127.0.0.1", resolve));
    const address = silent.address();
    if (typeof address !== "object" || !address) throw new Error("no address");
    const start = performance.now();
    const error = await unreachable(backendAt(address.port, 300).listDatabases());
    expect(error.message).toContain(`PostgreSQL is unreachable at 127.0.0.1:${address.port}: no answer`);
    expect(performance.now() - start).toBeLessThan(3_000);
  });
});
