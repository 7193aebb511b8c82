import { randomBytes } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { stringify } from "yaml";
import { SANDBOX_DIRECTORY } from "../auth/yaml-directory.js";
import { SystemClock } from "../clock.js";
import { startSandboxCluster } from "./cluster.js";
import { startControlServer } from "./control.js";
import { startHomeserver } from "./homeserver/index.js";
import { SANDBOX_DOMAIN } from "./run.js";
import { simControls } from "./sim.js";

/**
 * The doubles (homeserver, Nomad, Consul, Garage, and PostgreSQL when its binaries are here) in one
 * process on loopback ports, shared by several majordome processes and a test harness. What they need
 * to find them is written to a JSON file (the doubles' file).
 */
export interface StandaloneOptions {
  /** Where the doubles' file goes (written 0600); a fresh temporary directory otherwise. */
  portsFile?: string;
  /**
   * Nomad's simulated scheduler steps this many times faster. Clocks stay real time: the majordome
   * processes keep their own, and Consul sessions must expire on the time they renew by.
   */
  speed: number;
}

/** The doubles' file. */
export interface DoublesFile {
  /** The control API (src/sandbox/control.ts), with its bearer token. */
  control: { url: string; token: string };
  homeserver: { url: string; server_name: string };
  /** The room majordome serves; people of the homeserver double speak there. */
  room_id: string;
  bot: { user_id: string; access_token: string };
  nomad: { url: string };
  consul: { url: string };
  garage: { admin_url: string; s3_endpoint: string };
  /** Why `!db` commands are unavailable, when they are. */
  postgres_missing?: string;
  /**
   * Config sections pointing majordome at the doubles (matrix, directory, nomad, consul, garage,
   * postgres); a process adds its own state, http, timings and log.
   */
  config: Record<string, unknown>;
}

export interface StandaloneDoubles {
  readonly file: DoublesFile;
  readonly portsFile: string;
  close(): Promise<void>;
}

export async function startStandaloneDoubles(opts: StandaloneOptions): Promise<StandaloneDoubles> {
  const clock = new SystemClock();
  const ownDir = opts.portsFile ? undefined : await mkdtemp(join(tmpdir(), "majordome-doubles-"));
  const portsFile = opts.portsFile ?? join(ownDir!, "doubles.json");
  const directoryFile = join(dirname(portsFile), `${basename(portsFile, ".json")}.directory.yml`);

  const homeserver = await startHomeserver({ serverName: SANDBOX_DOMAIN });
  const bot = homeserver.registerUser("majordome");
  const founder = homeserver.registerUser("alice").userId;
  const roomId = homeserver.createRoom(founder, { name: "ops" });
  homeserver.invite(roomId, founder, bot.userId);
  homeserver.join(roomId, bot.userId);

  const cluster = await startSandboxCluster(clock, opts.speed);
  const token = randomBytes(24).toString("base64url");
  const control = await startControlServer({
    homeserver,
    roomId,
    inviter: founder,
    sim: simControls(cluster, clock),
    token,
  });
  const garage = cluster.config.garage as { admin_url: string; s3_endpoint: string };
  const file: DoublesFile = {
    control: { url: control.url, token },
    homeserver: { url: homeserver.url, server_name: homeserver.serverName },
    room_id: roomId,
    bot: { user_id: bot.userId, access_token: bot.accessToken },
    nomad: { url: cluster.nomad.url },
    consul: { url: cluster.consul.url },
    garage: { admin_url: garage.admin_url, s3_endpoint: garage.s3_endpoint },
    ...(cluster.postgresMissing ? { postgres_missing: cluster.postgresMissing } : {}),
    config: {
      matrix: {
        homeserver_url: homeserver.url,
        access_token: bot.accessToken,
        user_domain: SANDBOX_DOMAIN,
        command_rooms: [roomId],
      },
      directory: { kind: "yaml", yaml_path: directoryFile },
      ...cluster.config,
    },
  };
  await writeFile(directoryFile, stringify(SANDBOX_DIRECTORY), { mode: 0o600 });
  // Written whole then renamed: a harness polling for the file never reads half of it.
  await writeFile(`${portsFile}.tmp`, JSON.stringify(file, null, 2) + "\n", { mode: 0o600 });
  await rename(`${portsFile}.tmp`, portsFile);

  return {
    file,
    portsFile,
    async close() {
      await control.close();
      await cluster.close();
      await homeserver.close();
      await rm(portsFile, { force: true });
      await rm(directoryFile, { force: true });
      if (ownDir) await rm(ownDir, { recursive: true, force: true });
    },
  };
}

/** Runs the doubles until SIGTERM or SIGINT, then closes them; `say` gets the one line of readiness. */
export async function serveDoubles(opts: StandaloneOptions, say: (line: string) => void): Promise<void> {
  const doubles = await startStandaloneDoubles(opts);
  say(`doubles ready: control ${doubles.file.control.url}, everything else in ${doubles.portsFile}`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  await doubles.close();
}
