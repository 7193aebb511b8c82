/**
 * A throwaway PostgreSQL server for tests, the sandbox and benchmarks: its own cluster in a temp dir,
 * listening on 127.0.0.1 only, with SCRAM password authentication and a superuser `majordome_admin`.
 * initdb refuses to run as root, so as root every server binary runs as the `postgres` system user
 * (through runuser) in a temp dir that user owns. Installed by scripts/install-test-deps.sh.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants, existsSync, readFileSync, rmSync } from "node:fs";
import {
  access,
  appendFile,
  chown,
  mkdtemp,
  readdir,
  realpath,
  rm,
  stat,
  statfs,
  writeFile,
} from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { promisify } from "node:util";

export interface ThrowawayPostgres {
  host: string;
  port: number;
  adminUser: string;
  adminPassword: string;
  database: string;
  connectionString: string;
  /** The server's log (removed by stop()). */
  logFile: string;
  /** Stops the server at once and removes its temp dir. */
  stop(): Promise<void>;
  /** Stops and starts again on the same port, with the same data (for outage tests). */
  restart(): Promise<void>;
  /** Stops the server at once (as a crash would), keeping its data so restart() can bring it back. */
  kill(): Promise<void>;
}

const ADMIN_USER = "majordome_admin";
const HOST = "127.0.0.1";
const SYSTEM_USER = "postgres";
const REQUIRED = ["initdb", "pg_ctl", "postgres"];
const START_TIMEOUT_S = 30;
// A throwaway cluster takes about 40 MB, each database about 8 MB more.
const MEMORY_DIR = "/dev/shm";
const MEMORY_MIN_FREE = 1024 ** 3;

const run = promisify(execFile);

function hasBinaries(dir: string): boolean {
  return REQUIRED.every((name) => existsSync(join(dir, name)));
}

/** Debian's layout: /usr/lib/postgresql/<major>/bin, newest major first. */
async function debianBinDirs(): Promise<string[]> {
  const root = "/usr/lib/postgresql";
  const majors = await readdir(root).catch(() => [] as string[]);
  return majors
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a))
    .map((major) => join(root, major, "bin"));
}

/** The directory holding initdb, pg_ctl and postgres (symlinks on PATH are followed), or null. */
export async function findPostgresBinaries(): Promise<string | null> {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || !existsSync(join(dir, "initdb"))) continue;
    // Debian links only some binaries into /usr/local/bin: the real directory has them all.
    const real = dirname(await realpath(join(dir, "initdb")));
    if (hasBinaries(real)) return real;
  }
  for (const dir of await debianBinDirs()) if (hasBinaries(dir)) return dir;
  return null;
}

interface SystemUser {
  uid: number;
  gid: number;
}

/** How the server binaries run: directly, or as the `postgres` system user when we are root. */
class Runner {
  private constructor(
    private readonly binDir: string,
    readonly owner: SystemUser | null,
  ) {}

  static async create(binDir: string): Promise<Runner> {
    if (process.getuid?.() !== 0) return new Runner(binDir, null);
    return new Runner(binDir, await lookupSystemUser());
  }

  async exec(binary: string, args: string[], cwd: string): Promise<string> {
    const path = join(this.binDir, binary);
    const [file, argv] = this.owner ? ["runuser", ["-u", SYSTEM_USER, "--", path, ...args]] : [path, args];
    try {
      const { stdout } = await run(file, argv, { cwd, encoding: "utf8" });
      return stdout;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? "";
      throw new Error(`${binary} failed: ${stderr.trim() || String(error)}`, { cause: error });
    }
  }

  /** Files we write in the server's directories must belong to the user running it. */
  async own(path: string): Promise<void> {
    if (this.owner) await chown(path, this.owner.uid, this.owner.gid);
  }
}

async function lookupSystemUser(): Promise<SystemUser> {
  try {
    const [uid, gid] = await Promise.all([
      run("id", ["-u", SYSTEM_USER], { encoding: "utf8" }),
      run("id", ["-g", SYSTEM_USER], { encoding: "utf8" }),
    ]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    throw new Error(
      `PostgreSQL runs as the '${SYSTEM_USER}' system user when started as root, and there is none: ` +
        "run scripts/install-test-deps.sh (as root) first",
    );
  }
}

/** Whether a user can reach into dir: every ancestor must be searchable by them. */
async function traversable(dir: string, user: SystemUser): Promise<boolean> {
  for (let current = await realpath(dir); ; current = dirname(current)) {
    const { mode, uid, gid } = await stat(current);
    const bit = uid === user.uid ? 0o100 : gid === user.gid ? 0o010 : 0o001;
    if ((mode & bit) === 0) return false;
    if (current === dirname(current)) return true;
  }
}

async function usable(dir: string, runner: Runner): Promise<boolean> {
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    return !runner.owner || (await traversable(dir, runner.owner));
  } catch {
    return false;
  }
}

/** Shared memory when roomy: initdb and CREATE DATABASE write tens of MB, slow on some disks. */
async function inMemory(runner: Runner): Promise<boolean> {
  try {
    const { bavail, bsize } = await statfs(MEMORY_DIR);
    return bavail * bsize >= MEMORY_MIN_FREE && (await usable(MEMORY_DIR, runner));
  } catch {
    return false;
  }
}

/** Where the server's temp dir goes: memory, else TMPDIR when the server's user can reach it, else /tmp. */
async function tempBase(runner: Runner): Promise<string> {
  if (await inMemory(runner)) return MEMORY_DIR;
  const base = tmpdir();
  return (await usable(base, runner)) ? base : "/tmp";
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function serverConf(socketDir: string): string {
  return `
# majordome throwaway server
listen_addresses = '${HOST}'
unix_socket_directories = '${socketDir}'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
shared_buffers = 16MB
max_wal_size = 64MB
logging_collector = off
`;
}

const HBA = `# majordome throwaway server: SCRAM passwords, TCP on 127.0.0.1 and the private socket only
local all all scram-sha-256
host all all ${HOST}/32 scram-sha-256
`;

/** Every server this process started, stopped on exit even if a test file forgot its afterAll. */
const running = new Map<string, string>(); // data dir → temp dir
process.once("exit", () => {
  for (const [dataDir, dir] of running) {
    const pid = Number(readFileSyncSafe(join(dataDir, "postmaster.pid")).split("\n")[0]);
    // SIGQUIT is PostgreSQL's immediate shutdown.
    if (pid > 0) tryKill(pid, "SIGQUIT");
    rmSync(dir, { recursive: true, force: true });
  }
});

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

class Server {
  private up = false;
  private readonly dataDir: string;
  readonly logPath: string;

  constructor(
    private readonly runner: Runner,
    readonly dir: string,
    readonly port: number,
  ) {
    this.dataDir = join(dir, "data");
    this.logPath = join(dir, "server.log");
  }

  async initialize(adminPassword: string): Promise<void> {
    await this.runner.own(this.dir);
    const pwfile = join(this.dir, "pwfile");
    await writeFile(pwfile, adminPassword, { mode: 0o600 });
    await this.runner.own(pwfile);
    const args = ["-D", this.dataDir, "-U", ADMIN_USER, `--pwfile=${pwfile}`, "--auth=scram-sha-256"];
    try {
      await this.runner.exec("initdb", [...args, "-E", "UTF8", "--locale=C", "--no-sync"], this.dir);
    } finally {
      await rm(pwfile, { force: true });
    }
    await appendFile(join(this.dataDir, "postgresql.conf"), serverConf(this.dir));
    await writeFile(join(this.dataDir, "pg_hba.conf"), HBA);
  }

  async start(): Promise<void> {
    const args = ["start", "-w", "-t", String(START_TIMEOUT_S), "-D", this.dataDir, "-l", this.logPath];
    try {
      await this.runner.exec("pg_ctl", [...args, "-o", `-p ${this.port}`], this.dir);
    } catch (error) {
      const log = readFileSyncSafe(this.logPath).trim();
      throw new Error(`PostgreSQL did not start on ${HOST}:${this.port}: ${String(error)}\n${log}`, {
        cause: error,
      });
    }
    this.up = true;
    running.set(this.dataDir, this.dir);
  }

  async stop(mode: "immediate" | "fast"): Promise<void> {
    if (!this.up) return;
    try {
      await this.runner.exec("pg_ctl", ["stop", "-w", "-m", mode, "-D", this.dataDir], this.dir);
    } catch (error) {
      // A server that died on its own is stopped too.
      if (existsSync(join(this.dataDir, "postmaster.pid"))) throw error;
    }
    this.up = false;
  }

  async remove(): Promise<void> {
    running.delete(this.dataDir);
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function requireBinaries(): Promise<string> {
  const binDir = await findPostgresBinaries();
  if (binDir) return binDir;
  throw new Error(
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH nor under " +
      "/usr/lib/postgresql/*/bin: run scripts/install-test-deps.sh (as root) first",
  );
}

/** initdb, then start on the given port or on a free one (trying another if it was taken meanwhile). */
async function launch(
  runner: Runner,
  dir: string,
  fixedPort: number | undefined,
  adminPassword: string,
): Promise<Server> {
  const attempts = fixedPort === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const server = new Server(runner, dir, fixedPort ?? (await freePort()));
    if (attempt === 1) await server.initialize(adminPassword);
    try {
      await server.start();
      return server;
    } catch (error) {
      if (attempt >= attempts) throw error;
    }
  }
}

export async function startThrowawayPostgres(opts: { port?: number } = {}): Promise<ThrowawayPostgres> {
  const runner = await Runner.create(await requireBinaries());
  const dir = await mkdtemp(join(await tempBase(runner), "majordome-pg-"));
  const adminPassword = randomBytes(18).toString("base64url");
  try {
    const server = await launch(runner, dir, opts.port, adminPassword);
    return handle(server, adminPassword);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function handle(server: Server, adminPassword: string): ThrowawayPostgres {
  const database = "postgres";
  const credentials = `${encodeURIComponent(ADMIN_USER)}:${encodeURIComponent(adminPassword)}`;
  return {
    host: HOST,
    port: server.port,
    adminUser: ADMIN_USER,
    adminPassword,
    database,
    connectionString: `postgresql://${credentials}@${HOST}:${server.port}/${database}`,
    logFile: server.logPath,
    stop: async () => {
      try {
        await server.stop("immediate");
      } finally {
        await server.remove();
      }
    },
    kill: () => server.stop("immediate"),
    restart: async () => {
      await server.stop("fast");
      await server.start();
    },
  };
}

/** The `postgres` section of majordome's config that points at a throwaway server as its admin. */
export function postgresConfig(server: ThrowawayPostgres): Record<string, unknown> {
  return {
    host: server.host,
    port: server.port,
    user: server.adminUser,
    password: server.adminPassword,
    database: server.database,
  };
}
