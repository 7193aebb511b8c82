/**
 * Names of databases and roles majordome creates from chat. They are checked here before any reaches
 * PostgreSQL (and are always quoted besides): a narrow, lowercase ASCII shape that needs no quoting
 * to be read back, and never a name PostgreSQL, the cluster's operators or majordome itself use.
 */

export class InvalidNameError extends Error {
  override readonly name = "InvalidNameError";
}

export const MAX_NAME_LENGTH = 48;

const SHAPE = /^[a-z][a-z0-9_]*$/;

/** Names of the cluster itself. */
const CLUSTER_NAMES = new Set(["postgres", "template0", "template1", "public", "none"]);

/**
 * PostgreSQL's reserved key words (including those that can be function or type names) and the
 * statement words of SQL: unambiguous when quoted, but confusing in a room and in an audit log.
 */
const RESERVED_WORDS = new Set(
  `all alter analyse analyze and any array as asc asymmetric authorization begin binary both case cast
  check collate collation column commit concurrently constraint create cross current_catalog current_date
  current_role current_schema current_time current_timestamp current_user database default deferrable
  delete desc distinct do drop else end except false fetch for foreign freeze from full grant group having
  ilike in initially inner insert intersect into is isnull join lateral leading left like limit localtime
  localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
  references returning revoke right role rollback schema select session_user similar some symmetric
  system_user table tablesample then to trailing true truncate union unique update user using variadic
  verbose when where window with`.split(/\s+/),
);

function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** What is wrong with the characters of a name, or null when it has the right shape. */
function shapeProblem(name: string): string | null {
  const foreign = [...name].find((char) => !/[a-z0-9_]/.test(char));
  if (foreign !== undefined) {
    if (/[A-Z]/.test(foreign)) return "a name is written in lowercase";
    const shown = /[\x21-\x5f\x61-\x7e]/.test(foreign) ? `\`${foreign}\`` : codePoint(foreign);
    return `a name uses only lowercase ASCII letters, digits and _ (found ${shown})`;
  }
  if (!SHAPE.test(name)) return "a name starts with a letter";
  return null;
}

function reservedProblem(name: string): string | null {
  if (CLUSTER_NAMES.has(name)) return `\`${name}\` is reserved by PostgreSQL`;
  if (name.startsWith("pg_")) return "names starting with `pg_` are reserved by PostgreSQL";
  if (name.startsWith("majordome"))
    return "names starting with `majordome` are reserved for majordome itself";
  if (RESERVED_WORDS.has(name)) return `\`${name}\` is an SQL key word`;
  return null;
}

/**
 * Checks a database or role name. Returns a message for the room, or null when the name is fine.
 * The message quotes the name only once it is known to be plain lowercase ASCII.
 */
export function validateDatabaseName(name: string): string | null {
  if (name.length === 0) return "a name is required";
  if (name.length > MAX_NAME_LENGTH) {
    return `a name has at most ${MAX_NAME_LENGTH} characters (this one has ${name.length})`;
  }
  return shapeProblem(name) ?? reservedProblem(name);
}

/** Throws InvalidNameError unless validateDatabaseName accepts the name. */
export function requireValidName(name: string, what: "database" | "role"): string {
  const problem = validateDatabaseName(name);
  if (problem !== null) throw new InvalidNameError(`invalid ${what} name: ${problem}`);
  return name;
}
