/**
 * Who a Matrix user is in the directory. Pure: no I/O, so it can be tested exhaustively.
 *
 * Grammar (Matrix spec, appendices "User Identifiers"): `@localpart:domain`, split at the first colon
 * (a server name may itself hold a colon, before a port), at most 255 bytes in all. Current localparts use
 * `a-z 0-9 . _ = - / +`; historical ones any printable ASCII but `:`.
 */
export interface IdentityOptions {
  /** The homeserver whose users are the directory's users, e.g. "deuxfleurs.fr". Compared exactly. */
  homeserverDomain: string;
  /** Full Matrix ID → directory username, for people whose localpart differs (or who live elsewhere). */
  explicit?: Record<string, string>;
}

const MAX_USER_ID_BYTES = 255;
const LOCALPART = /^[a-z0-9._=\-/+]+$/;
const HISTORICAL_LOCALPART = /^[\x21-\x39\x3b-\x7e]+$/;

export function parseMatrixUserId(mxid: string): { localpart: string; server: string } | null {
  if (!mxid.startsWith("@") || new TextEncoder().encode(mxid).length > MAX_USER_ID_BYTES) return null;
  const colon = mxid.indexOf(":");
  if (colon < 0) return null;
  const localpart = mxid.slice(1, colon);
  const server = mxid.slice(colon + 1);
  if (!HISTORICAL_LOCALPART.test(localpart) || server === "") return null;
  return { localpart, server };
}

/** The directory username for a Matrix ID, or null when this Matrix user is nobody in the directory. */
export function matrixIdToUsername(mxid: string, opts: IdentityOptions): string | null {
  const parsed = parseMatrixUserId(mxid);
  if (!parsed) return null;
  // Object.hasOwn: a Matrix ID such as "@__proto__:x" must not reach inherited properties.
  if (opts.explicit && Object.hasOwn(opts.explicit, mxid)) {
    const mapped = opts.explicit[mxid];
    return typeof mapped === "string" && mapped !== "" ? mapped : null;
  }
  if (parsed.server !== opts.homeserverDomain || !LOCALPART.test(parsed.localpart)) return null;
  return parsed.localpart;
}
