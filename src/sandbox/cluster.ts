import type { Clock } from "../clock.js";
import { startConsulDouble, type ConsulDouble } from "./consul/index.js";
import { startGarageDouble, type GarageDouble } from "./garage/index.js";
import { findPostgresBinaries, startThrowawayPostgres, type ThrowawayPostgres } from "./postgres.js";

/** The simulated cluster behind the sandbox: the doubles, and a real throwaway PostgreSQL when possible. */
export interface SandboxCluster {
  consul: ConsulDouble;
  garage: GarageDouble;
  postgres?: ThrowawayPostgres;
  /** Why database commands are unavailable, when they are. */
  postgresMissing?: string;
  /** The config sections that point majordome at them. */
  config: Record<string, unknown>;
  close(): Promise<void>;
}

const GARAGE_TOKEN = "sandbox-admin-token";

export async function startSandboxCluster(clock: Clock): Promise<SandboxCluster> {
  const consul = await startConsulDouble({ now: () => clock.now() });
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
    consul,
    garage,
    ...(postgres ? { postgres } : {}),
    ...(postgresMissing ? { postgresMissing } : {}),
    config: {
      consul: { address: consul.url },
      garage: { admin_url: garage.adminUrl, admin_token: GARAGE_TOKEN, s3_endpoint: garage.s3Url, s3_region: garage.region },
      ...(postgres
        ? { postgres: { host: postgres.host, port: postgres.port, user: postgres.adminUser, password: postgres.adminPassword, database: postgres.database } }
        : {}),
    },
    async close() {
      await postgres?.stop();
      await garage.close();
      await consul.close();
    },
  };
}
