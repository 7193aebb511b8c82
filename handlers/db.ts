import { code, message, table } from "../src/chat/message.js";
import { APP_NAME, templateStanza, type ConsulSecrets } from "../src/backends/consul-secrets.js";
import { generatePassword, validateDatabaseName, type PostgresBackend } from "../src/backends/postgres.js";
import type { Services } from "../src/commands/context.js";
import { beginAction, Rollback, undoSecrets } from "./actions.js";
import { defineCommand, type CommandSpec } from "../src/commands/declare.js";
import { name, type ArgType } from "../src/commands/types.js";
import type { ActionRecord } from "../src/state/journal.js";

const dbName: ArgType<string> = {
  label: "database name",
  parse: (raw) => {
    const problem = validateDatabaseName(raw);
    return problem ? { ok: false, expected: `a valid name (${problem})` } : { ok: true, value: raw };
  },
};
const appName = name("app", APP_NAME, "an app name: lowercase letters, digits, - and _");

function backends(services: Services): { postgres: PostgresBackend; secrets: ConsulSecrets } {
  const { postgres, secrets, postgresUnavailable } = services.provisioning ?? {};
  if (!postgres) {
    throw new Error(
      `PostgreSQL is unavailable: ${postgresUnavailable ?? "there is no postgres section in majordome's config"}`,
    );
  }
  if (!secrets)
    throw new Error("Consul is not configured: credentials have nowhere to go (no consul section)");
  return { postgres, secrets };
}

interface CreateArgs {
  name: string;
  app: string;
  owner: string;
}

/** The secrets of a database, by kind, as keys in Consul. */
function secretKeys(secrets: ConsulSecrets, app: string) {
  return {
    user: secrets.keyFor(app, "db_user"),
    pass: secrets.keyFor(app, "db_pass"),
    name: secrets.keyFor(app, "db_name"),
  };
}

/** The order of `db create`'s steps: the rollback undoes those done and the one in progress. */
const DB_STEPS = ["secrets", "role", "database", "verified"] as const;
type DbStep = (typeof DB_STEPS)[number];

/**
 * Creates a database in steps recorded in the action journal: the credentials go to Consul first
 * (create-only), then the role, then the database; a login proves it works. Each step first looks at
 * what exists already (a kill between a step's effect and its journal record leaves it made but not
 * recorded), so a restart resumes from the last completed step without failing on its own work (the
 * password is read back from Consul, never from the journal). A step that fails rolls back what this
 * action made, the step in progress included.
 */
export async function createDatabase(
  services: Services,
  actionId: string,
  args: CreateArgs,
): Promise<string> {
  const { postgres, secrets } = backends(services);
  const { journal } = services;
  const keys = secretKeys(secrets, args.app);
  let current: DbStep = "secrets";
  try {
    await journal.step(actionId, "secrets", async () => {
      // The pre-check refused a db_pass already present, so one found here is this action's own (written
      // before a restart): it is kept, and the role gets it.
      const password = (await secrets.read(keys.pass)) ?? generatePassword();
      for (const [key, value] of [
        [keys.user, args.owner],
        [keys.name, args.name],
        [keys.pass, password],
      ] as const) {
        await writeOnce(secrets, key, value);
      }
      return { keys: [keys.user, keys.name, keys.pass] };
    });
    const password = await readPassword(services, keys.pass);
    current = "role";
    await journal.step(actionId, "role", async () => {
      if (!(await postgres.roleExists(args.owner))) await postgres.createRole(args.owner, password);
      else await postgres.setRolePassword(args.owner, password);
    });
    current = "database";
    await journal.step(actionId, "database", async () => {
      const found = await postgres.info(args.name);
      if (!found) return postgres.createDatabase(args.name, args.owner);
      // Made before a restart, between CREATE DATABASE and the journal's record.
      if (found.owner !== args.owner)
        throw new Error(`database ${args.name} exists already, owned by ${found.owner}`);
      if (!found.createdWithConnectRevoked)
        throw new Error(`database ${args.name} exists, but PUBLIC may connect to it`);
    });
    current = "verified";
    await journal.step(actionId, "verified", async () => {
      if (!(await postgres.canConnect(args.owner, password, args.name)))
        throw new Error(`${args.owner} cannot log in to ${args.name} with the new password`);
    });
    await journal.finish(actionId, "succeeded");
    return (
      `✅ Database ${code(args.name)} created, owned by role ${code(args.owner)}; CONNECT revoked from PUBLIC.\n\n` +
      `Credentials are in Consul: ${code(keys.user)}, ${code(keys.pass)}, ${code(keys.name)}. A job reads them with:\n\n` +
      "```hcl\n" +
      templateStanza(secrets, args.app, ["db_user", "db_pass", "db_name"]) +
      "\n```"
    );
  } catch (error) {
    const undone = await rollBack(services, args, await journal.get(actionId), current);
    await journal.finish(actionId, "failed", (error as Error).message);
    throw new Error(`${(error as Error).message}. ${undone}`, { cause: error });
  }
}

/**
 * Writes a secret create-only; one present already with the same value is fine (written by this action
 * before a restart), another value is not overwritten.
 */
async function writeOnce(secrets: ConsulSecrets, key: string, value: string): Promise<void> {
  if ((await secrets.read(key)) === value) return;
  if (await secrets.createOnly(key, value)) return;
  if ((await secrets.read(key)) === value) return;
  throw new Error(
    `${key} already exists in Consul; it is not overwritten (use ${code("!db rotate")} to change it)`,
  );
}

async function readPassword(services: Services, key: string): Promise<string> {
  const { secrets } = backends(services);
  const value = await secrets.read(key);
  if (value === undefined) throw new Error(`${key} vanished from Consul`);
  return value;
}

/**
 * Undoes, newest first, what this action made: the steps the journal records and the one in progress
 * (whose effect may have landed without its record). Each undo looks first: only what is there, and ours.
 */
async function rollBack(
  services: Services,
  args: CreateArgs,
  record: ActionRecord | undefined,
  current: DbStep,
): Promise<string> {
  const { postgres, secrets } = backends(services);
  const done = new Set<string>(record?.steps.map((s) => s.name));
  done.add(current);
  const reached = (step: DbStep) =>
    done.has(step) || DB_STEPS.slice(DB_STEPS.indexOf(step)).some((later) => done.has(later));
  const rollback = new Rollback();

  if (reached("database")) {
    const found = await postgres.info(args.name).catch(() => null);
    // The pre-check refused an existing database: one owned by our role now is this action's.
    if (found && found.owner === args.owner)
      await rollback.undo(`database ${args.name}`, () => postgres.dropDatabase(args.name, { force: true }));
  }
  if (reached("role") && (await postgres.roleExists(args.owner).catch(() => true)))
    await rollback.undo(`role ${args.owner}`, () => postgres.dropRole(args.owner));
  if (reached("secrets")) {
    const keys = secretKeys(secrets, args.app);
    const ours: Array<[string, string | undefined]> = [
      [keys.user, args.owner],
      [keys.name, args.name],
      // Absent when the action began (the pre-check): present now, it is this action's.
      [keys.pass, undefined],
    ];
    await undoSecrets(rollback, secrets, ours);
  }
  return rollback.summary();
}

const create = defineCommand<{ name: string; app?: string; owner?: string }>({
  name: "db create",
  summary: "Create a PostgreSQL database and its role; credentials go to Consul KV",
  args: [{ name: "name", type: dbName }],
  flags: {
    app: {
      summary: "the app whose secrets/<app>/ folder gets the credentials (default: the database name)",
      type: appName,
    },
    owner: { summary: "the role that owns it (default: the database name)", type: dbName },
  },
  async run(ctx, args) {
    const { postgres, secrets } = backends(ctx.services);
    const resolved = {
      name: args.name,
      app: args.app ?? args.name.replace(/_/g, "-"),
      owner: args.owner ?? args.name,
    };
    const keys = secretKeys(secrets, resolved.app);
    const [roleExists, dbExists, secretExists] = await Promise.all([
      postgres.roleExists(resolved.owner),
      postgres.databaseExists(resolved.name),
      secrets.exists(keys.pass),
    ]);
    if (dbExists) {
      const info = await postgres.info(resolved.name);
      return message(
        `Database ${code(resolved.name)} already exists (owner ${code(info?.owner ?? "?")}); its secret ${secretExists ? `is at ${code(keys.pass)}` : "is **not** in Consul"}. Nothing was changed.`,
      );
    }
    if (roleExists || secretExists) {
      return message(
        `⚠️ Not created: ${roleExists ? `role ${code(resolved.owner)} already exists` : ""}${roleExists && secretExists ? " and " : ""}${secretExists ? `${code(keys.pass)} already exists in Consul` : ""}, without the database. Nothing was changed; look into it, or choose --owner / --app.`,
      );
    }
    const actionId = await beginAction(ctx, "db create", resolved);
    if (!actionId) return message("This request was already handled.");
    return message(await createDatabase(ctx.services, actionId, resolved));
  },
});

const list = defineCommand({
  name: "db list",
  summary: "PostgreSQL databases: owners and sizes",
  async run(ctx) {
    const { postgres } = backends(ctx.services);
    const dbs = await postgres.listDatabases();
    if (dbs.length === 0) return message("No databases.");
    return message(
      table(
        ["database", "owner", "size"],
        dbs.map((d) => [code(d.name), d.owner, bytes(d.sizeBytes)]),
      ),
    );
  },
});

const info = defineCommand<{ name: string }>({
  name: "db info",
  summary: "One database: owner, size, sessions, access",
  args: [{ name: "name", type: dbName }],
  async run(ctx, { name: db }) {
    const { postgres } = backends(ctx.services);
    const found = await postgres.info(db);
    if (!found) return message(`No database ${code(db)}.`);
    return message(
      `**${code(found.name)}**: owner ${code(found.owner)}, ${bytes(found.sizeBytes)}, ${found.sessions} session(s), ${found.encoding}; ` +
        (found.createdWithConnectRevoked ? "only its owner may connect." : "⚠️ PUBLIC may connect."),
    );
  },
});

const rotate = defineCommand<{ name: string; app?: string }>({
  name: "db rotate",
  summary: "Give a database's role a new password (PostgreSQL first, then Consul)",
  args: [{ name: "name", type: dbName }],
  flags: {
    app: {
      summary: "the app whose secrets hold the credentials (default: the database name)",
      type: appName,
    },
  },
  async run(ctx, { name: db, app }) {
    const { postgres, secrets } = backends(ctx.services);
    const found = await postgres.info(db);
    if (!found) return message(`No database ${code(db)}.`);
    const keys = secretKeys(secrets, app ?? db.replace(/_/g, "-"));
    if (!(await secrets.exists(keys.pass)))
      return message(`${code(keys.pass)} is not in Consul; nothing was changed.`);
    const password = generatePassword();
    // PostgreSQL first: until the app re-reads Consul it keeps its open connections (an existing session
    // is not cut by a password change), and new logins with the old password fail only from here on.
    await postgres.setRolePassword(found.owner, password);
    await secrets.replace(keys.pass, password);
    if (!(await postgres.canConnect(found.owner, password, db)))
      throw new Error("the new password does not log in");
    return message(
      `🔑 New password for role ${code(found.owner)}, written to ${code(keys.pass)}. Open connections keep working; ` +
        `new ones need the new password: restart the app's job (its template re-renders from Consul), e.g. ${code(`${ctx.prefix}restart <job>`)}.`,
    );
  },
});

const drop = defineCommand<{ name: string; app?: string; force?: boolean }>({
  name: "db drop",
  summary: "Drop a database, its role and its secrets",
  args: [{ name: "name", type: dbName }],
  flags: {
    app: { summary: "the app whose secrets are removed too (default: the database name)", type: appName },
    force: { summary: "drop even while sessions are connected (they are cut)", policy: "db drop --force" },
  },
  async plan(ctx, { name: db, app, force }) {
    const { postgres, secrets } = backends(ctx.services);
    const found = await postgres.info(db);
    if (!found) throw new Error(`no database ${code(db)}`);
    const keys = secretKeys(secrets, app ?? db.replace(/_/g, "-"));
    return {
      summary: `Drop database ${code(db)} (${bytes(found.sizeBytes)}, owner ${code(found.owner)}, ${found.sessions} session(s) now), role ${code(found.owner)}, and the secrets ${code(keys.user)}, ${code(keys.pass)}, ${code(keys.name)}.${force ? " Sessions are cut." : ""} This cannot be undone.`,
      facts: { db, owner: found.owner, keys: Object.values(keys), force: force ?? false },
    };
  },
  async run(ctx, args) {
    const { postgres, secrets } = backends(ctx.services);
    const found = await postgres.info(args.name);
    if (!found) return message(`No database ${code(args.name)}; nothing was done.`);
    const sessions = await postgres.activeSessions(args.name);
    if (sessions > 0 && !args.force)
      return message(
        `⚠️ Not dropped: ${sessions} session(s) are connected to ${code(args.name)}. Stop the app first, or add ${code("--force")}.`,
      );
    const keys = secretKeys(secrets, args.app ?? args.name.replace(/_/g, "-"));
    await postgres.dropDatabase(args.name, { force: args.force ?? false });
    await postgres.dropRole(found.owner);
    for (const key of Object.values(keys)) await secrets.remove(key);
    return message(`🗑️ Dropped database ${code(args.name)}, role ${code(found.owner)} and its secrets.`);
  },
});

function bytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

/** Resumes a `db create` a restart interrupted, from its last completed step. */
export async function resumeDatabaseCreation(services: Services, action: ActionRecord): Promise<string> {
  return createDatabase(services, action.id, action.args as unknown as CreateArgs);
}

export const dbCommands: CommandSpec[] = [create, list, info, rotate, drop];
