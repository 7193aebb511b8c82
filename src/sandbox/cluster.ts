import type { Clock } from "../clock.js";
import { join } from "node:path";
import { repoRoot } from "../paths.js";
import { startConsulDouble, type ConsulDouble } from "./consul/index.js";
import { startNomadDouble, type NomadDouble } from "./nomad/index.js";
import { startGarageDouble, type GarageDouble } from "./garage/index.js";
import { startStolonDouble, type StolonDouble } from "./stolon.js";
import {
  findPostgresBinaries,
  postgresConfig,
  startThrowawayPostgres,
  type ThrowawayPostgres,
} from "./postgres.js";

/** The simulated cluster behind the sandbox: the doubles, and a real throwaway PostgreSQL when possible. */
export interface SandboxCluster {
  nomad: NomadDouble;
  consul: ConsulDouble;
  garage: GarageDouble;
  /** A Stolon cluster ("pg") kept in the Consul double by a simulated sentinel, keepers and proxies. */
  stolon: StolonDouble;
  postgres?: ThrowawayPostgres;
  /** Why database commands are unavailable, when they are. */
  postgresMissing?: string;
  /** The config sections that point majordome at them. */
  config: Record<string, unknown>;
  close(): Promise<void>;
}

const GARAGE_TOKEN = "sandbox-admin-token";

export async function startSandboxCluster(clock: Clock, speed: number): Promise<SandboxCluster> {
  // A step of the simulated scheduler: a placement, a start, a health check, in simulated time.
  // Heartbeats at Nomad's 30 s of simulated time: the event stream's watchdog runs on that clock.
  const nomad = await startNomadDouble({
    stepMs: Math.max(1, 500 / speed),
    now: () => clock.now(),
    heartbeatMs: Math.max(10, 30_000 / speed),
  });
  nomad.failNextPlacement("broken", "app", "image-pull");
  const consul = await startConsulDouble({ now: () => clock.now() });
  const stolon = await startStolonDouble({ consulUrl: consul.url, clock });
  const garage = await startGarageDouble({ adminToken: GARAGE_TOKEN });
  let postgres: ThrowawayPostgres | undefined;
  let postgresMissing: string | undefined;
  if (await findPostgresBinaries()) {
    try {
      postgres = await startThrowawayPostgres();
    } catch (error) {
      postgresMissing = `the sandbox could not start PostgreSQL: ${(error as Error).message}`;
    }
  } else {
    postgresMissing = "no PostgreSQL binaries on this machine (scripts/install-test-deps.sh installs them)";
  }
  return {
    nomad,
    consul,
    garage,
    stolon,
    ...(postgres ? { postgres } : {}),
    ...(postgresMissing ? { postgresMissing } : {}),
    config: {
      nomad: { address: nomad.url, jobs_dir: join(repoRoot(), "src", "sandbox", "jobs") },
      consul: { address: consul.url },
      stolon: { clusters: [stolon.cluster] },
      garage: {
        admin_url: garage.adminUrl,
        admin_token: GARAGE_TOKEN,
        s3_endpoint: garage.s3Url,
        s3_region: garage.region,
      },
      ...(postgres
        ? {
            postgres: postgresConfig(postgres),
          }
        : {}),
    },
    async close() {
      await postgres?.stop();
      await garage.close();
      await stolon.close();
      await consul.close();
      await nomad.close();
    },
  };
}
