/** What the simulated tasks write to stdout and stderr (served by /v1/client/fs/logs). */
export class LogStore {
  private readonly files = new Map<string, string>();

  append(allocId: string, task: string, type: "stdout" | "stderr", lines: readonly string[]): void {
    const key = `${allocId}/${task}/${type}`;
    this.files.set(key, (this.files.get(key) ?? "") + lines.map((line) => `${line}\n`).join(""));
  }

  read(allocId: string, task: string, type: string): string {
    return this.files.get(`${allocId}/${task}/${type}`) ?? "";
  }
}

const stamp = (ms: number): string => new Date(ms).toISOString();

/** A task whose env sets LOG_LEVEL=debug prints its environment, secrets included, as careless apps do. */
export function startupLines(
  ms: number,
  task: string,
  image: string,
  env: Record<string, string> | null = null,
): string[] {
  const debug =
    env?.LOG_LEVEL === "debug"
      ? Object.entries(env).map(([name, value]) => `${stamp(ms)} [DEBUG] ${task}: env ${name}=${value}`)
      : [];
  return [
    `${stamp(ms)} [INFO] ${task}: starting (image ${image})`,
    ...debug,
    `${stamp(ms)} [INFO] ${task}: configuration loaded from /local`,
    `${stamp(ms)} [INFO] ${task}: listening on 0.0.0.0:8080`,
  ];
}

export function crashLines(ms: number, task: string): string[] {
  return [
    `${stamp(ms)} [ERROR] ${task}: could not connect to database: dial tcp 10.0.0.12:5432: connect: connection refused`,
    `${stamp(ms)} [ERROR] ${task}: fatal: giving up after 3 attempts`,
    "exit status 1",
  ];
}

export function oomLines(): string[] {
  return [
    "fatal error: runtime: out of memory",
    "",
    "runtime stack:",
    "runtime.throw({0x9a1b2c, 0x16})",
    "\truntime/panic.go:1047 +0x5d fp=0x7ffd2a5c8e10 sp=0x7ffd2a5c8de0 pc=0x436a5d",
  ];
}

export function unhealthyLines(ms: number, task: string): string[] {
  return [`${stamp(ms)} [WARN] ${task}: health check GET /health returned 503: upstream not ready`];
}

export const stopLines = (ms: number, task: string): string[] => [
  `${stamp(ms)} [INFO] ${task}: received SIGINT, shutting down`,
];
