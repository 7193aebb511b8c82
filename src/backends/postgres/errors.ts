/**
 * PostgreSQL's and the driver's errors, turned into messages a room can read. They carry names and
 * server-side explanations only: never a query text, and never a password (redact() is the last check).
 */
import { DatabaseError } from "pg";

export class PostgresBackendError extends Error {
  override readonly name: string = "PostgresBackendError";

  constructor(
    message: string,
    /** The SQLSTATE, when PostgreSQL answered with an error. */
    readonly sqlState?: string,
  ) {
    super(message);
  }
}

export class PostgresUnreachableError extends PostgresBackendError {
  override readonly name = "PostgresUnreachableError";
}

/** Messages for SQLSTATEs an operation expects (e.g. 42P04 → "database shop already exists"). */
export type KnownErrors = Partial<Record<string, string | ((error: DatabaseError) => string)>>;

export interface ErrorContext {
  /** host:port, for the room. */
  where: string;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

// Class 08 is "connection exception"; 57P01-57P03 are shutdowns and start-ups.
const CONNECTION_STATES = /^(08...|57P0[1-3])$/;
const DRIVER_CONNECTION_FAILURE =
  /Connection terminated|timeout expired|connection timeout|Query read timeout|connection error|not queryable/i;

function systemCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z_]+$/.test(code) ? code : undefined;
}

function isConnectionFailure(error: unknown): boolean {
  if (error instanceof DatabaseError) return CONNECTION_STATES.test(error.code ?? "");
  if (!(error instanceof Error)) return false;
  return systemCode(error) !== undefined || DRIVER_CONNECTION_FAILURE.test(error.message);
}

function unreachableReason(error: unknown, context: ErrorContext): string {
  const code = error instanceof DatabaseError ? error.code : systemCode(error);
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "no route to host";
    case "ETIMEDOUT":
      return `no answer within ${context.connectTimeoutMs} ms`;
    case "57P03":
      return "the server is starting up or shutting down";
    case "57P01":
    case "57P02":
      return "the server is shutting down";
  }
  if (error instanceof Error && /timeout/i.test(error.message)) return "no answer in time";
  return "the connection was lost";
}

function databaseErrorMessage(error: DatabaseError, known: KnownErrors, context: ErrorContext): string {
  const expected = known[error.code ?? ""];
  if (typeof expected === "function") return expected(error);
  if (expected !== undefined) return expected;
  switch (error.code) {
    case "28P01":
    case "28000":
      return `PostgreSQL at ${context.where} refused majordome's login: ${error.message}`;
    case "42501":
      return `majordome's PostgreSQL role lacks a privilege: ${error.message}`;
    case "57014":
      return `PostgreSQL did not finish within ${context.statementTimeoutMs} ms (statement timeout)`;
  }
  return `PostgreSQL error: ${error.message}${error.detail ? ` (${error.detail})` : ""}`;
}

/** The backend's error for anything the driver threw. */
export function describeFailure(
  error: unknown,
  known: KnownErrors,
  context: ErrorContext,
): PostgresBackendError {
  if (error instanceof PostgresBackendError) return error;
  if (isConnectionFailure(error)) {
    const reason = unreachableReason(error, context);
    return new PostgresUnreachableError(`PostgreSQL is unreachable at ${context.where}: ${reason}`);
  }
  if (error instanceof DatabaseError) {
    return new PostgresBackendError(databaseErrorMessage(error, known, context), error.code);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new PostgresBackendError(`PostgreSQL client error at ${context.where}: ${message}`);
}

/** Removes every secret from an error's message and stack (the stack repeats the message). */
export function redact<E extends Error>(error: E, secrets: readonly string[]): E {
  for (const secret of secrets) {
    if (!secret) continue;
    error.message = error.message.split(secret).join("[secret]");
    if (error.stack) error.stack = error.stack.split(secret).join("[secret]");
  }
  return error;
}
