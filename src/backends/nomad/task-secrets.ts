import type { FullAllocation } from "./types.js";

/**
 * What a task knows that its logs must not show in the room: the values of its secret-looking
 * environment variables (job `env` and literal lines of `env = true` templates), and the values of
 * the Consul keys its templates read under the secrets prefix (where majordome writes credentials,
 * read as `{{ key "secrets/app/db_pass" }}`).
 */

/** Variable names that hold secrets by convention. */
const SECRET_NAME = /PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|SALT|COOKIE/i;
/** Shorter values would blank ordinary words of the logs, and hardly protect anything. */
const MIN_SECRET_LENGTH = 6;
/** `{{ key "path" }}`, `{{ keyOrDefault "path" "default" }}` (consul-template). */
const TEMPLATE_KEY = /\{\{-?\s*(?:key|keyOrDefault)\s+"([^"]+)"/g;
/** A literal `NAME=value` line of a template's data. */
const TEMPLATE_LITERAL = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/;
/** Credentials inside a URL: `scheme://user:password@host`. */
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi;

export const REDACTED = "‹redacted›";

export interface TaskSecrets {
  /** Secret values known without asking anyone. */
  values: string[];
  /** Consul keys under the secrets prefix the task's templates read: their values are secrets too. */
  consulKeys: string[];
}

export function taskSecrets(
  allocation: FullAllocation,
  taskName: string,
  secretsPrefix: string,
): TaskSecrets {
  const group = allocation.Job?.TaskGroups?.find((g) => g.Name === allocation.TaskGroup);
  const task = group?.Tasks?.find((t) => t.Name === taskName);
  const values: string[] = [];
  const consulKeys = new Set<string>();
  for (const [name, value] of Object.entries(task?.Env ?? {})) if (SECRET_NAME.test(name)) values.push(value);
  for (const template of task?.Templates ?? []) {
    const data = template.EmbeddedTmpl ?? "";
    for (const [, key] of data.matchAll(TEMPLATE_KEY))
      if (key !== undefined && key.startsWith(secretsPrefix)) consulKeys.add(key);
    for (const line of data.split("\n")) {
      const [, name, value] = TEMPLATE_LITERAL.exec(line) ?? [];
      if (name && value && !value.includes("{{") && SECRET_NAME.test(name)) values.push(unquote(value));
    }
  }
  return { values, consulKeys: [...consulKeys] };
}

/** The text with every secret value, and the password of any URL, replaced by REDACTED. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  // As written, and as it appears inside URLs (percent-encoded).
  const forms = secrets.flatMap((s) => [s.trim(), encodeURIComponent(s.trim())]);
  const longestFirst = [...new Set(forms)]
    .filter((s) => s.length >= MIN_SECRET_LENGTH)
    .sort((a, b) => b.length - a.length);
  let redacted = text;
  for (const secret of longestFirst) redacted = redacted.replaceAll(secret, REDACTED);
  return redacted.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
}

const unquote = (value: string): string => value.replace(/^(["'])(.*)\1$/, "$2");
