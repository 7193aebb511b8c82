import Consul from "consul";
import { readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";

export type SecretKind = "db_user" | "db_pass" | "db_name" | "s3_access_key" | "s3_secret_key" | "s3_bucket";

export interface SecretLayout {
  /** Where secrets live, e.g. "secrets/" (as the collective's Nomad templates read them). */
  prefix: string;
  /** Key of each secret under the prefix; {app} is replaced by the app's name. */
  keys: Record<SecretKind, string>;
}

export const DEFAULT_SECRET_KEYS: Record<SecretKind, string> = {
  db_user: "{app}/db_user",
  db_pass: "{app}/db_pass",
  db_name: "{app}/db_name",
  s3_access_key: "{app}/s3_access_key",
  s3_secret_key: "{app}/s3_secret_key",
  s3_bucket: "{app}/s3_bucket",
};

/** App names double as Consul key segments: nothing that could climb out of the prefix. */
export const APP_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export interface ConsulOptions {
  address: string;
  token?: string;
  datacenter?: string;
  tls?: { ca_file?: string; cert_file?: string; key_file?: string; insecure_skip_verify?: boolean };
}

export class SecretWriteError extends Error {}

/** Builds the npm `consul` client from majordome's config. */
export function consulClient(opts: ConsulOptions): Consul {
  const url = new URL(opts.address);
  const secure = url.protocol === "https:";
  const tls = opts.tls;
  return new Consul({
    host: url.hostname,
    port: Number(url.port || (secure ? 443 : 80)),
    secure,
    defaults: {
      ...(opts.token ? { token: opts.token } : {}),
      ...(opts.datacenter ? { dc: opts.datacenter } : {}),
    },
    ...(secure && tls
      ? {
          agent: new HttpsAgent({
            ...(tls.ca_file ? { ca: readFileSync(tls.ca_file) } : {}),
            ...(tls.cert_file ? { cert: readFileSync(tls.cert_file) } : {}),
            ...(tls.key_file ? { key: readFileSync(tls.key_file) } : {}),
            rejectUnauthorized: !(tls.insecure_skip_verify ?? false),
          }),
        }
      : {}),
  });
}

/**
 * Credentials go to Consul KV, never to the room. A first write is create-only (cas=0), so an
 * existing secret is never overwritten by accident; replacing one is explicit (rotation).
 */
export class ConsulSecrets {
  constructor(
    private readonly consul: Consul,
    readonly layout: SecretLayout,
  ) {}

  keyFor(app: string, kind: SecretKind): string {
    if (!APP_NAME.test(app))
      throw new SecretWriteError(`"${app}" is not an app name (lowercase letters, digits, - and _)`);
    return this.layout.prefix + this.layout.keys[kind].replaceAll("{app}", app);
  }

  async exists(key: string): Promise<boolean> {
    return (await this.read(key)) !== undefined;
  }

  async read(key: string): Promise<string | undefined> {
    const entry = await this.consul.kv.get(key);
    return entry?.Value ?? undefined;
  }

  /** Writes only if the key is absent. False when it exists already (nothing written). */
  async createOnly(key: string, value: string): Promise<boolean> {
    return this.write(() => this.consul.kv.set({ key, value, cas: 0 }), key);
  }

  /** Replaces an existing secret, checking nobody changed it in between. */
  async replace(key: string, value: string): Promise<void> {
    const current = await this.consul.kv.get(key);
    if (!current) throw new SecretWriteError(`${key} does not exist in Consul; nothing to replace`);
    const ok = await this.write(() => this.consul.kv.set({ key, value, cas: current.ModifyIndex }), key);
    if (!ok)
      throw new SecretWriteError(`${key} changed in Consul while it was being replaced; nothing was written`);
  }

  async remove(key: string): Promise<void> {
    try {
      await this.consul.kv.del(key);
    } catch (error) {
      throw new SecretWriteError(`could not delete ${key} in Consul: ${reason(error)}`);
    }
  }

  private async write(set: () => Promise<boolean>, key: string): Promise<boolean> {
    try {
      return await set();
    } catch (error) {
      // The value is never part of the message: only the key and Consul's reason.
      throw new SecretWriteError(`could not write ${key} to Consul: ${reason(error)}`);
    }
  }
}

function reason(error: unknown): string {
  const e = error as { code?: string; statusCode?: number; message?: string };
  return e.code ?? (e.statusCode ? `HTTP ${e.statusCode}` : (e.message ?? String(error)));
}

/** The template stanza a Nomad job uses to read the secrets (for the room: where, not what). */
export function templateStanza(
  secrets: ConsulSecrets,
  app: string,
  kinds: SecretKind[],
  envPrefix = "",
): string {
  const lines = kinds.map(
    (kind) => `${envPrefix}${kind.toUpperCase()}={{ key "${secrets.keyFor(app, kind)}" }}`,
  );
  return [
    "template {",
    "  data        = <<EOH",
    ...lines.map((l) => `${l}`),
    "EOH",
    '  destination = "secrets/app.env"',
    "  env         = true",
    "}",
  ].join("\n");
}
