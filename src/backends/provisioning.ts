import type { ConsulSecrets } from "./consul-secrets.js";
import type { GarageAdmin } from "./garage.js";
import type { PostgresBackend } from "./postgres.js";

/** What the provisioning commands need; each part is present when the config has its section. */
export interface ProvisioningServices {
  secrets?: ConsulSecrets;
  postgres?: PostgresBackend;
  garage?: GarageAdmin;
  /** Why PostgreSQL is absent, where it is not simply left out of the config (the sandbox says why). */
  postgresUnavailable?: string;
}
