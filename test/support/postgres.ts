/**
 * A throwaway PostgreSQL server per test file (the core lives in src/sandbox/postgres.ts, which the
 * sandbox and the benchmarks use too), and a client connected as any role for assertions.
 */
import { Client } from "pg";
import type { ThrowawayPostgres } from "../../src/sandbox/postgres.js";

export { findPostgresBinaries, postgresConfig, startThrowawayPostgres } from "../../src/sandbox/postgres.js";
export type { ThrowawayPostgres } from "../../src/sandbox/postgres.js";

/** A connected client; the caller ends it. Connects as the admin unless told otherwise. */
export async function connectTo(
  server: ThrowawayPostgres,
  as: { user?: string; password?: string; database?: string } = {},
): Promise<Client> {
  const client = new Client({
    host: server.host,
    port: server.port,
    user: as.user ?? server.adminUser,
    password: as.password ?? server.adminPassword,
    database: as.database ?? server.database,
    connectionTimeoutMillis: 5_000,
  });
  client.on("error", () => undefined); // a test that cares sees it from connect() or query()
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}
