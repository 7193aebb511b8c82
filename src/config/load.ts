import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { configSchema, type Config } from "./schema.js";

/** Keys whose value is a secret: each may instead be given as `<key>_file`, a path read at start-up. */
const SECRET_KEYS = new Set(["access_token", "bind_password", "token", "password", "admin_token"]);

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: invalid configuration\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${(error as Error).message}`]);
  }
  return parseConfig(text, { source: path, env, baseDir: dirname(resolve(path)) });
}

export function parseConfig(
  text: string,
  opts: { source?: string; env?: NodeJS.ProcessEnv; baseDir?: string } = {},
): Config {
  const source = opts.source ?? "config";
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0)
    throw new ConfigError(
      source,
      doc.errors.map((e) => e.message),
    );
  const problems: string[] = [];
  const raw = resolveSecrets(
    interpolate(doc.toJS() ?? {}, opts.env ?? process.env, [], problems),
    opts.baseDir ?? process.cwd(),
    [],
    problems,
  );
  const result = configSchema.safeParse(raw);
  if (!result.success) problems.push(...formatIssues(result.error.issues));
  if (problems.length > 0) throw new ConfigError(source, problems);
  return result.data as Config;
}

/** Replaces `${NAME}` in every string with the environment variable (`$${` escapes a literal `${`). */
function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: string[], problems: string[]): unknown {
  if (typeof value === "string") {
    return value.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (match, name: string) => {
      if (match.startsWith("$$")) return match.slice(1);
      const found = env[name];
      if (found === undefined) {
        problems.push(`${keyPath(path)}: environment variable ${name} is not set`);
        return "";
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, String(i)], problems));
  if (isRecord(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, env, [...path, k], problems)]),
    );
  }
  return value;
}

function resolveSecrets(value: unknown, baseDir: string, path: string[], problems: string[]): unknown {
  if (Array.isArray(value))
    return value.map((v, i) => resolveSecrets(v, baseDir, [...path, String(i)], problems));
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const secretKey = key.endsWith("_file") ? key.slice(0, -"_file".length) : undefined;
    if (secretKey && SECRET_KEYS.has(secretKey)) {
      if (value[secretKey] !== undefined) {
        problems.push(`${keyPath([...path, key])}: give either ${secretKey} or ${key}, not both`);
        continue;
      }
      if (typeof v !== "string") {
        problems.push(`${keyPath([...path, key])}: expected a file path`);
        continue;
      }
      try {
        out[secretKey] = readFileSync(resolve(baseDir, v), "utf8").replace(/\r?\n$/, "");
      } catch (error) {
        // The path is not secret; the error never contains the file's content.
        problems.push(
          `${keyPath([...path, key])}: cannot read ${v}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
        );
      }
      continue;
    }
    out[key] = resolveSecrets(v, baseDir, [...path, key], problems);
  }
  return out;
}

function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      return `${keyPath(issue.path.map(String))}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")}`;
    }
    return `${keyPath(issue.path.map(String))}: ${issue.message}`;
  });
}

function keyPath(path: string[]): string {
  return path.length === 0 ? "(top level)" : path.join(".");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
