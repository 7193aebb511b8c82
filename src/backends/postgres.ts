/**
 * PostgreSQL provisioning for `!db create/list/info/rotate/drop`: roles and databases on the
 * collective's cluster, through a small pool connected as majordome's admin role.
 *
 * Every database or role name goes through validateDatabaseName before any SQL is sent, and is quoted
 * with the driver's escapeIdentifier besides. Values travel as query parameters, except a role's
 * password, which DDL cannot take as a parameter: it is sent as a SCRAM verifier literal
 * (escapeLiteral), so the plain password never reaches the server.
 */
import type { ConnectionOptions } from "node:tls";
import { Client, escapeIdentifier, escapeLiteral, Pool, type ClientConfig, type QueryResultRow } from "pg";
import type { Logger } from "../log.js";
import {
  describeFailure,
  PostgresBackendError,
  redact,
  type ErrorContext,
  type KnownErrors,
} from "./postgres/errors.js";
import { InvalidNameError, requireValidName } from "./postgres/names.js";
import { passwordProblem, scramVerifier } from "./postgres/secrets.js";

export { InvalidNameError, validateDatabaseName } from "./postgres/names.js";
export { generatePassword } from "./postgres/secrets.js";
export { PostgresBackendError, PostgresUnreachableError } from "./postgres/errors.js";

export interface PostgresBackendOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The database the admin pool connects to (usually `postgres`). */
  database: string;
  /** true: TLS, verifying the server against the system's CAs; or Node's TLS options (e.g. `ca`). */
  ssl?: boolean | ConnectionOptions;
  /** Default 5_000. */
  connectTimeoutMs?: number;
  /** Default 30_000. */
  statementTimeoutMs?: number;
  logger?: Logger;
}

export interface DatabaseSummary {
  name: string;
  owner: string;
  sizeBytes: number;
}

export interface DatabaseInfo extends DatabaseSummary {
  sessions: number;
  encoding: string;
  /** PUBLIC has no CONNECT privilege on it (as createDatabase leaves it). */
  createdWithConnectRevoked: boolean;
}

/** What a role's login refusal looks like: wrong password, no such role or database, no CONNECT. */
const LOGIN_REFUSED = new Set(["28P01", "28000", "3D000", "42501"]);
// Only sessions of clients: autovacuum workers and the like come and go on their own.
const CLIENT_SESSIONS = "backend_type = 'client backend' AND pid <> pg_backend_pid()";
const quote = escapeIdentifier;

export class PostgresBackend {
  private readonly pool: Pool;
  private readonly context: ErrorContext;
  private readonly logger: Logger | undefined;
  private requests = 0;
  private versionNumber: number | undefined;
  private closed = false;

  constructor(private readonly options: PostgresBackendOptions) {
    this.context = {
      where: `${options.host}:${options.port}`,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      statementTimeoutMs: options.statementTimeoutMs ?? 30_000,
    };
    this.logger = options.logger?.child({ backend: "postgres", server: this.context.where });
    this.pool = new Pool({
      ...this.connection(options.user, options.password, options.database),
      max: 4,
      idleTimeoutMillis: 10_000,
      allowExitOnIdle: true,
      statement_timeout: this.context.statementTimeoutMs,
    });
    // An idle pooled connection that the server closes (restart, failover) is dropped by the pool;
    // without a listener its "error" event would crash majordome. The next query reconnects.
    this.pool.on("error", (error) => this.logger?.debug({ err: error.message }, "idle connection lost"));
  }

  /** Queries and connection attempts sent to the server so far (tests check refusals send none). */
  get serverRequests(): number {
    return this.requests;
  }

  roleExists(role: string): Promise<boolean> {
    return this.operation("roleExists", { role }, async () => {
      requireValidName(role, "role");
      return (await this.rows("SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).length > 0;
    });
  }

  databaseExists(db: string): Promise<boolean> {
    return this.operation("databaseExists", { db }, async () => {
      requireValidName(db, "database");
      return this.exists(db);
    });
  }

  /** A login role with no other attribute; the server stores the password's SCRAM verifier. */
  createRole(role: string, password: string): Promise<void> {
    return this.operation(
      "createRole",
      { role },
      async () => {
        requireValidName(role, "role");
        const verifier = await this.verifier(password);
        const attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
        await this.rows(
          `CREATE ROLE ${quote(role)} WITH ${attributes} PASSWORD ${escapeLiteral(verifier)}`,
          [],
          {
            "42710": `role ${role} already exists`,
          },
        );
      },
      [password],
    );
  }

  setRolePassword(role: string, password: string): Promise<void> {
    return this.operation(
      "setRolePassword",
      { role },
      async () => {
        requireValidName(role, "role");
        const verifier = await this.verifier(password);
        await this.requireManagedRole(role);
        await this.rows(`ALTER ROLE ${quote(role)} WITH PASSWORD ${escapeLiteral(verifier)}`, [], {
          "42704": `role ${role} does not exist`,
        });
      },
      [password],
    );
  }

  /** Owned by `owner`, who alone (with superusers) may connect: PUBLIC's CONNECT is revoked. */
  createDatabase(db: string, owner: string): Promise<void> {
    return this.operation("createDatabase", { db, owner }, async () => {
      requireValidName(db, "database");
      requireValidName(owner, "role");
      await this.rows(`CREATE DATABASE ${quote(db)} OWNER ${quote(owner)}`, [], {
        "42P04": `database ${db} already exists`,
        "42704": `role ${owner} does not exist`,
      });
      await this.restrictConnect(db, owner);
    });
  }

  /** Refuses while sessions are open, unless `force`: then they are terminated first. */
  dropDatabase(db: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.operation("dropDatabase", { db, force: opts.force === true }, async () => {
      requireValidName(db, "database");
      if (!(await this.exists(db))) throw new PostgresBackendError(`database ${db} does not exist`);
      if (opts.force) return this.forceDrop(db);
      const sessions = await this.sessionsIn(db);
      if (sessions > 0) throw this.inUse(db, sessions);
      await this.rows(`DROP DATABASE ${quote(db)}`, [], this.dropErrors(db));
    });
  }

  /** Refuses while the role is connected, and while it owns objects (drop its database first). */
  dropRole(role: string): Promise<void> {
    return this.operation("dropRole", { role }, async () => {
      requireValidName(role, "role");
      await this.requireManagedRole(role);
      const [row] = await this.rows<{ sessions: number }>(
        `SELECT count(*)::int AS sessions FROM pg_stat_activity WHERE usename = $1 AND ${CLIENT_SESSIONS}`,
        [role],
      );
      const sessions = row?.sessions ?? 0;
      if (sessions > 0) {
        throw new PostgresBackendError(`role ${role} is still connected: ${plural(sessions)}`);
      }
      await this.rows(`DROP ROLE ${quote(role)}`, [], {
        "42704": `role ${role} does not exist`,
        "2BP01": (error) => `role ${role} still owns or may use objects: ${detailLines(error.detail)}`,
      });
    });
  }

  activeSessions(db: string): Promise<number> {
    return this.operation("activeSessions", { db }, async () => {
      requireValidName(db, "database");
      return this.sessionsIn(db);
    });
  }

  /** Every database but the templates and `postgres`, by name (and those a DROP left half-removed: -2). */
  listDatabases(): Promise<DatabaseSummary[]> {
    return this.operation("listDatabases", {}, async () => {
      const rows = await this.rows<{ name: string; owner: string; size: string }>(
        `SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner, pg_database_size(d.oid) AS size
           FROM pg_database d
          WHERE NOT d.datistemplate AND d.datname <> 'postgres' AND d.datconnlimit <> -2
          ORDER BY d.datname`,
      );
      return rows.map((row) => ({ name: row.name, owner: row.owner, sizeBytes: Number(row.size) }));
    });
  }

  info(db: string): Promise<DatabaseInfo | null> {
    return this.operation("info", { db }, async () => {
      requireValidName(db, "database");
      const [row] = await this.rows<InfoRow>(INFO_QUERY, [db]);
      if (!row) return null;
      const { name, owner, size, sessions, encoding, public_connect } = row;
      return {
        name,
        owner,
        sizeBytes: Number(size),
        sessions,
        encoding,
        createdWithConnectRevoked: !public_connect,
      };
    });
  }

  /** Whether `user` can log in to `db` with `password` (after create or rotate). */
  canConnect(user: string, password: string, db: string): Promise<boolean> {
    return this.operation(
      "canConnect",
      { user, db },
      async () => {
        requireValidName(user, "role");
        requireValidName(db, "database");
        return this.tryLogin(user, password, db);
      },
      [password],
    );
  }

  /** E.g. "15.18 (Debian 15.18-0+deb12u1)". */
  serverVersion(): Promise<string> {
    return this.operation("serverVersion", {}, async () => {
      const [row] = await this.rows<{ server_version: string }>("SHOW server_version");
      return row?.server_version ?? "unknown";
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private connection(user: string, password: string, database: string): ClientConfig {
    const { host, port, ssl } = this.options;
    return {
      host,
      port,
      user,
      password,
      database,
      ssl: ssl === true ? { rejectUnauthorized: true } : ssl || false,
      connectionTimeoutMillis: this.context.connectTimeoutMs,
      // A server that accepted the connection but stopped answering must not hang a command.
      query_timeout: this.context.statementTimeoutMs + this.context.connectTimeoutMs,
      application_name: "majordome",
      keepAlive: true,
    };
  }

  /** Runs one public operation: logs it (names only), and makes every failure a redacted backend error. */
  private async operation<T>(
    name: string,
    fields: Record<string, unknown>,
    run: () => Promise<T>,
    secrets: string[] = [],
  ): Promise<T> {
    this.logger?.debug({ op: name, ...fields }, "postgres operation");
    try {
      return await run();
    } catch (error) {
      const failure = redact(
        error instanceof InvalidNameError ? error : describeFailure(error, {}, this.context),
        secrets,
      );
      this.logger?.warn({ op: name, ...fields, err: failure.message }, "postgres operation failed");
      throw failure;
    }
  }

  private async rows<R extends QueryResultRow>(
    sql: string,
    values: unknown[] = [],
    known: KnownErrors = {},
  ): Promise<R[]> {
    if (this.closed) throw new PostgresBackendError("the PostgreSQL backend is closed");
    this.requests++;
    try {
      return (await this.pool.query<R>(sql, values)).rows;
    } catch (error) {
      throw describeFailure(error, known, this.context);
    }
  }

  private async exists(db: string): Promise<boolean> {
    return (await this.rows("SELECT 1 FROM pg_database WHERE datname = $1", [db])).length > 0;
  }

  private async sessionsIn(db: string): Promise<number> {
    const [row] = await this.rows<{ sessions: number }>(
      `SELECT count(*)::int AS sessions FROM pg_stat_activity WHERE datname = $1 AND ${CLIENT_SESSIONS}`,
      [db],
    );
    return row?.sessions ?? 0;
  }

  private async verifier(password: string): Promise<string> {
    const problem = passwordProblem(password);
    if (problem !== null) throw new PostgresBackendError(problem);
    return scramVerifier(password);
  }

  /** majordome leaves alone the roles that administer the cluster. */
  private async requireManagedRole(role: string): Promise<void> {
    const [row] = await this.rows<{ privileged: boolean }>(
      `SELECT rolsuper OR rolcreaterole OR rolreplication OR rolbypassrls AS privileged
         FROM pg_roles WHERE rolname = $1`,
      [role],
    );
    if (!row) throw new PostgresBackendError(`role ${role} does not exist`);
    if (row.privileged) {
      throw new PostgresBackendError(`role ${role} is privileged: majordome does not manage it`);
    }
  }

  private async restrictConnect(db: string, owner: string): Promise<void> {
    try {
      await this.rows(`REVOKE CONNECT, TEMPORARY ON DATABASE ${quote(db)} FROM PUBLIC`);
      await this.rows(`GRANT CONNECT ON DATABASE ${quote(db)} TO ${quote(owner)}`);
    } catch (error) {
      // Never leave behind a database anyone can connect to.
      await this.rows(`DROP DATABASE ${quote(db)}`).catch(() => undefined);
      const reason = error instanceof Error ? error.message : String(error);
      throw new PostgresBackendError(
        `database ${db} was dropped again: its access could not be restricted (${reason})`,
      );
    }
  }

  private async forceDrop(db: string): Promise<void> {
    if ((await this.serverVersionNumber()) >= 130_000) {
      await this.rows(`DROP DATABASE ${quote(db)} WITH (FORCE)`, [], this.dropErrors(db));
      return;
    }
    // Before PostgreSQL 13: close the door, end the sessions, then drop.
    await this.rows(`ALTER DATABASE ${quote(db)} ALLOW_CONNECTIONS false`);
    await this.rows(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND ${CLIENT_SESSIONS}`,
      [db],
    );
    await this.rows(`DROP DATABASE ${quote(db)}`, [], this.dropErrors(db));
  }

  private dropErrors(db: string): KnownErrors {
    return {
      "3D000": `database ${db} does not exist`,
      "55006": (error) => this.inUse(db, sessionsInDetail(error.detail)).message,
    };
  }

  private inUse(db: string, sessions: number | null): PostgresBackendError {
    const count = sessions === null ? "" : `: ${plural(sessions)}`;
    return new PostgresBackendError(
      `database ${db} is still in use${count} (drop it with force to end them)`,
    );
  }

  private async serverVersionNumber(): Promise<number> {
    if (this.versionNumber === undefined) {
      const [row] = await this.rows<{ server_version_num: string }>("SHOW server_version_num");
      this.versionNumber = Number(row?.server_version_num ?? 0);
    }
    return this.versionNumber;
  }

  private async tryLogin(user: string, password: string, db: string): Promise<boolean> {
    this.requests++;
    const client = new Client(this.connection(user, password, db));
    client.on("error", () => undefined); // reported by connect() or query()
    try {
      await client.connect();
      await client.query("SELECT 1");
      return true;
    } catch (error) {
      const state = (error as { code?: unknown }).code;
      if (typeof state === "string" && LOGIN_REFUSED.has(state)) return false;
      throw describeFailure(error, {}, this.context);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

interface InfoRow {
  name: string;
  owner: string;
  size: string;
  sessions: number;
  encoding: string;
  public_connect: boolean;
}

// PUBLIC is grantee 0 in an ACL; a NULL ACL means the defaults, which let PUBLIC connect.
const INFO_QUERY = `
  SELECT d.datname AS name,
         pg_get_userbyid(d.datdba) AS owner,
         pg_database_size(d.oid) AS size,
         (SELECT count(*)::int FROM pg_stat_activity a
           WHERE a.datname = d.datname AND ${CLIENT_SESSIONS}) AS sessions,
         pg_encoding_to_char(d.encoding) AS encoding,
         EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) acl
                  WHERE acl.grantee = 0 AND acl.privilege_type = 'CONNECT') AS public_connect
    FROM pg_database d
   WHERE d.datname = $1 AND NOT d.datistemplate`;

function plural(sessions: number): string {
  return `${sessions} session${sessions === 1 ? "" : "s"}`;
}

/** "There are 2 other sessions using the database." → 2 */
function sessionsInDetail(detail: string | undefined): number | null {
  const match = /(\d+) other sessions?/.exec(detail ?? "");
  return match ? Number(match[1]) : null;
}

function detailLines(detail: string | undefined): string {
  const text = (detail ?? "").split("\n").filter(Boolean).join("; ");
  return text.length > 300 ? `${text.slice(0, 297)}...` : text || "see the server's log";
}
