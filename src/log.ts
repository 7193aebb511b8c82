import pino, { type Logger } from "pino";

/** Secrets never reach a log line, whatever object they are logged in. */
const REDACT = [
  "password",
  "*.password",
  "token",
  "*.token",
  "access_token",
  "*.access_token",
  "bind_password",
  "*.bind_password",
  "admin_token",
  "*.admin_token",
  "secret",
  "*.secret",
  "headers.authorization",
  "*.headers.authorization",
];

export function createLogger(level: string, destination: "stdout" | "stderr" = "stdout"): Logger {
  return pino(
    { level, base: { app: "majordome" }, redact: { paths: REDACT, censor: "[secret]" } },
    pino.destination({ fd: destination === "stdout" ? 1 : 2, sync: false }),
  );
}

export type { Logger };
