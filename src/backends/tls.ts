import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Agent } from "undici";

/** The TLS settings of a config section (Nomad, Consul, LDAP): files, read when the client is made. */
export interface TlsFiles {
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  insecure_skip_verify?: boolean;
}

export function tlsConnectOptions(tls?: TlsFiles): ConnectionOptions {
  return {
    ...(tls?.ca_file ? { ca: readFileSync(tls.ca_file) } : {}),
    ...(tls?.cert_file ? { cert: readFileSync(tls.cert_file) } : {}),
    ...(tls?.key_file ? { key: readFileSync(tls.key_file) } : {}),
    rejectUnauthorized: !(tls?.insecure_skip_verify ?? false),
  };
}

/** An undici connection pool to one of the cluster's HTTP APIs, with its TLS settings. */
export function httpAgent(tls?: TlsFiles, options: Omit<Agent.Options, "connect"> = {}): Agent {
  return new Agent({ ...options, connect: tlsConnectOptions(tls) });
}
