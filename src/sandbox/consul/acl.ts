import { randomUUID } from "node:crypto";
import { goQuote } from "./go.js";
import { HttpError } from "./http.js";

export interface TokenPolicy {
  readonly policy: "read" | "write";
  /** KV prefixes the token may touch; all keys when absent. */
  readonly prefixes?: readonly string[];
}

export type Access = "read" | "write";
export type Resource = "key" | "session" | "service" | "node" | "operator";

/** Who is asking: ACLs off (everything allowed), the anonymous token, or a configured token. */
export type Principal =
  | { readonly kind: "management" }
  | { readonly kind: "anonymous" }
  | { readonly kind: "token"; readonly accessor: string; readonly policy: TokenPolicy };

const MANAGEMENT: Principal = { kind: "management" };
const ANONYMOUS: Principal = { kind: "anonymous" };

export class Acl {
  private readonly tokens = new Map<string, Principal>();
  readonly enabled: boolean;

  constructor(tokens: Readonly<Record<string, TokenPolicy>> | undefined) {
    for (const [secret, policy] of Object.entries(tokens ?? {})) {
      this.tokens.set(secret, { kind: "token", accessor: randomUUID(), policy });
    }
    this.enabled = this.tokens.size > 0;
  }

  /** An unknown token is refused outright, as Consul's token resolution does. */
  resolve(secret: string | undefined): Principal {
    if (!this.enabled) return MANAGEMENT;
    if (secret === undefined || secret === "") return ANONYMOUS;
    const principal = this.tokens.get(secret);
    if (!principal) throw new HttpError(403, "ACL not found");
    return principal;
  }
}

export function allowed(principal: Principal, access: Access, resource: Resource, name: string): boolean {
  if (principal.kind !== "token") return principal.kind === "management";
  const { policy, prefixes } = principal.policy;
  if (access === "write" && policy !== "write") return false;
  if (resource !== "key" || prefixes === undefined) return true;
  return prefixes.some((prefix) => name.startsWith(prefix));
}

/** A tree delete needs write on every key under the prefix. */
export function allowedPrefixWrite(principal: Principal, prefix: string): boolean {
  return allowed(principal, "write", "key", prefix);
}

export function requireAccess(principal: Principal, access: Access, resource: Resource, name: string): void {
  if (!allowed(principal, access, resource, name)) throw denied(principal, access, resource, name);
}

/**
 * Where Consul filters results (KV lists, transactions' reads), it would answer the anonymous token
 * with nothing rather than a 403. The double refuses it outright, so a missing token never passes
 * unnoticed in tests.
 */
export function refuseAnonymous(
  principal: Principal,
  access: Access,
  resource: Resource,
  name: string,
): void {
  if (principal.kind === "anonymous") throw denied(principal, access, resource, name);
}

/** acl.PermissionDeniedError's text (HTTP 403). */
export function denied(principal: Principal, access: Access, resource: Resource, name: string): HttpError {
  return new HttpError(403, deniedMessage(principal, access, resource, name));
}

export function deniedMessage(
  principal: Principal,
  access: Access,
  resource: Resource,
  name: string,
): string {
  const on = name === "" ? "" : ` on ${goQuote(name)}`;
  const permission = `lacks permission '${resource}:${access}'${on}`;
  if (principal.kind === "token") {
    return `Permission denied: token with AccessorID '${principal.accessor}' ${permission}`;
  }
  return (
    `Permission denied: anonymous token ${permission}. ` +
    "The anonymous token is used implicitly when a request does not specify a token."
  );
}
