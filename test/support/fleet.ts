/**
 * Several majordome processes sharing one set of doubles and their state in the Consul double, as two
 * Nomad allocations share a cluster: each instance has its own config file and HTTP port, and, with the
 * leader lock, one leads while the others stand by. Consul refuses session TTLs under 10 s, so the
 * Consul double runs its TTLs and lock delays `speed` times faster (timeScale) and each majordome's clock
 * runs as fast (MAJORDOME_CLOCK_SPEED).
 */
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import { spawnMajordome, type MajordomeProcess } from "./process.js";
import { startRecordingProxy, type RecordingProxy } from "./recording-proxy.js";
import { DOMAIN, startWorld, writeWorldConfig, type World } from "./world.js";

export type Role = "leader" | "standby";

export interface FleetOptions {
  /** How much faster than real time the Consul double's sessions and majordome's clock run (default 10). */
  speed?: number;
  /** With the Consul lock (default true); without it every instance acts (for single-instance restarts). */
  leader?: boolean;
  /** In majordome's clock time (default "10s", Consul's minimum). */
  sessionTtl?: string;
  /** In majordome's clock time (default "1s"). */
  lockDelay?: string;
  /** Config sections for the backends (nomad, garage, postgres...). */
  sections?: Record<string, unknown>;
  timings?: Record<string, string>;
  /** The alerts section (default: off); with it on, incidents go to the world's room. */
  alerts?: Record<string, unknown>;
  /** An existing room and homeserver (default: a new world). */
  world?: World;
  /** Majordome reaches Consul through a recording proxy; these requests keep their bodies. */
  recordConsul?: (method: string, path: string) => boolean;
}

export interface Instance {
  readonly name: string;
  readonly process: MajordomeProcess;
  readonly healthUrl: string;
  /** The role /health reports, and whether it is healthy; undefined while it does not answer. */
  health(): Promise<{ role: string; healthy: boolean } | undefined>;
  /** Resolves once /health reports `role` and healthy. */
  waitRole(role: Role, timeoutMs?: number): Promise<void>;
  /** Whether the process has exited (by itself or killed). */
  exited(): boolean;
}

export interface Fleet {
  readonly world: World;
  readonly consul: ConsulDouble;
  /** What majordome asked Consul, with `recordConsul`. */
  readonly consulProxy?: RecordingProxy;
  readonly speed: number;
  readonly instances: Instance[];
  /**
   * Starts one more instance; `env` is added to its environment (MAJORDOME_CRASH_AT...);
   * `homeserverUrl` points it elsewhere than the homeserver double (a recording proxy in front of it).
   */
  spawn(name: string, env?: Record<string, string>, opts?: { homeserverUrl?: string }): Promise<Instance>;
  /** The instance /health reports as a healthy leader, if any (standbys and dead ones skipped). */
  leader(): Promise<Instance | undefined>;
  /** The session holding the lock key, read from the Consul double. */
  lockHolder(): Promise<string | undefined>;
  close(): Promise<void>;
}

export const LOCK_KEY = "majordome/leader";

export async function startFleet(opts: FleetOptions = {}): Promise<Fleet> {
  const speed = opts.speed ?? 10;
  // Every instance's clock runs from this moment, so they all tell the same (sped-up) time.
  const origin = Date.now();
  const world = opts.world ?? (await startWorld());
  const consul = await startConsulDouble({ timeScale: 1 / speed });
  const consulProxy = opts.recordConsul && (await startRecordingProxy(consul.url, opts.recordConsul));
  const instances: Instance[] = [];
  const leaderEnabled = opts.leader ?? true;
  const sections = {
    ...opts.sections,
    consul: { address: consulProxy ? consulProxy.url : consul.url },
    state: {
      backend: "consul",
      leader: {
        enabled: leaderEnabled,
        lock_key: LOCK_KEY,
        session_ttl: opts.sessionTtl ?? "10s",
        lock_delay: opts.lockDelay ?? "1s",
      },
    },
    alerts: { enabled: false, ...opts.alerts },
  };
  // Clock time runs `speed` times faster: long enough in real time for a loaded CI machine.
  const timings = {
    sync_timeout: "2s",
    command_timeout: "10m",
    nomad_request_timeout: "5m",
    backend_request_timeout: "5m",
    health_sync_stale: "10m",
    ...opts.timings,
  };

  return {
    world,
    consul,
    ...(consulProxy ? { consulProxy } : {}),
    speed,
    instances,
    async spawn(name, env = {}, spawnOpts = {}) {
      const matrix = {
        homeserver_url: spawnOpts.homeserverUrl ?? world.hs.url,
        access_token: world.bot.accessToken,
        user_domain: DOMAIN,
        command_rooms: [world.roomId],
        ...(opts.alerts?.enabled ? { alert_room: world.roomId } : {}),
      };
      const { path, healthUrl } = await writeWorldConfig(world, {
        sections: { ...sections, matrix },
        timings,
      });
      const child = spawnMajordome(path, {
        MAJORDOME_CLOCK_SPEED: String(speed),
        MAJORDOME_CLOCK_ORIGIN: String(origin),
        NOMAD_ALLOC_ID: name,
        ...env,
      });
      const instance = makeInstance(name, child, healthUrl);
      instances.push(instance);
      return instance;
    },
    async leader() {
      for (const instance of instances) {
        if (instance.exited()) continue;
        const health = await instance.health();
        if (health?.role === "leader" && health.healthy) return instance;
      }
      return undefined;
    },
    async lockHolder() {
      const res = await fetch(`${consul.url}/v1/kv/${LOCK_KEY}`);
      if (res.status !== 200) return undefined;
      const [entry] = (await res.json()) as Array<{ Session?: string }>;
      return entry?.Session || undefined;
    },
    async close() {
      await Promise.all(instances.map((i) => i.process.kill("SIGKILL")));
      await consulProxy?.close();
      await consul.close();
      if (!opts.world) await world.close();
    },
  };
}

function makeInstance(name: string, child: MajordomeProcess, healthUrl: string): Instance {
  const instance: Instance = {
    name,
    process: child,
    healthUrl,
    exited: () => child.child.exitCode !== null || child.child.signalCode !== null,
    async health() {
      try {
        const res = await fetch(healthUrl);
        const body = (await res.json()) as { role?: string };
        return { role: String(body.role), healthy: res.status === 200 };
      } catch {
        return undefined;
      }
    },
    async waitRole(role, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const health = await instance.health();
        if (health?.role === role && health.healthy) return;
        if (instance.exited()) {
          throw new Error(`${name} exited before being a healthy ${role}:\n${child.stderr()}`);
        }
        if (Date.now() > deadline) {
          throw new Error(
            `${name} not a healthy ${role} within ${timeoutMs} ms (health: ${JSON.stringify(health)})`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  };
  return instance;
}
