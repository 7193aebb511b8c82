import type { ConsulSecrets } from "./consul-secrets.js";
import type { GarageAdmin } from "./garage.js";
import type { PostgresBackend } from "./postgres.js";

/** What the provisioning commands need; each part is present when the config has its section. */
export interface ProvisioningServices {
  secrets?: ConsulSecrets;
  postgres?: PostgresBackend;
  garage?: GarageAdmin;
}
