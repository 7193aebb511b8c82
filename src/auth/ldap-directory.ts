/**
 * The collective's LDAP directory (Bottin) through ldapts: one bound connection as the service account,
 * re-established after a failure, and a per-name cache on the injected clock.
 */
import type { ConnectionOptions } from "node:tls";
import { Client, EqualityFilter, ResultCodeError, type Entry, type Filter } from "ldapts";
import type { Clock } from "../clock.js";
import { DirectoryUnavailableError, sortedUnique, type Directory, type DirectoryUser } from "./directory.js";

export interface LdapDirectoryOptions {
  url: string;
  bindDn: string;
  bindPassword: string;
  /** Users are the direct children of this entry, e.g. "ou=users,dc=deuxfleurs,dc=fr". */
  userBase: string;
  /** Groups are the direct children of this entry, e.g. "ou=groups,dc=deuxfleurs,dc=fr". */
  groupBase: string;
  /** Default "cn". */
  userNameAttribute?: string;
  /** Default "cn". */
  groupNameAttribute?: string;
  /** Default "memberOf". */
  memberOfAttribute?: string;
  /** Attribute of a group listing its members' DNs. Default "member". */
  memberAttribute?: string;
  /** Also search groups whose member attribute holds the user's DN (for directories without memberOf). */
  searchGroupsByMember?: boolean;
  /** Default 60_000. */
  cacheTtlMs?: number;
  /** Per connection attempt and per operation. Default 5_000. */
  timeoutMs?: number;
  tlsOptions?: ConnectionOptions;
  clock: Clock;
  /** Names that can exist in the directory; anything else is "no such user/group". Default: Bottin's. */
  namePattern?: RegExp;
}

/** What a Bottin user or group name can look like (Matrix localparts are lowercase). */
export const BOTTIN_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

type Settings = LdapDirectoryOptions & Required<Omit<LdapDirectoryOptions, "tlsOptions">>;

function withDefaults(options: LdapDirectoryOptions): Settings {
  const pattern = options.namePattern ?? BOTTIN_NAME_PATTERN;
  return {
    ...options,
    userNameAttribute: options.userNameAttribute ?? "cn",
    groupNameAttribute: options.groupNameAttribute ?? "cn",
    memberOfAttribute: options.memberOfAttribute ?? "memberOf",
    memberAttribute: options.memberAttribute ?? "member",
    searchGroupsByMember: options.searchGroupsByMember ?? false,
    cacheTtlMs: options.cacheTtlMs ?? 60_000,
    timeoutMs: options.timeoutMs ?? 5_000,
    // A /g or /y pattern would make test() stateful.
    namePattern: new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, "")),
  };
}

const MAX_CACHED = 10_000;

export class LdapDirectory implements Directory {
  private readonly settings: Settings;
  private readonly userBaseRdns: Rdn[];
  private readonly groupBaseRdns: Rdn[];
  private readonly users: TtlCache<DirectoryUser | null>;
  private readonly groups: TtlCache<string[]>;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private closed = false;

  constructor(options: LdapDirectoryOptions) {
    this.settings = withDefaults(options);
    this.userBaseRdns = requireDn(this.settings.userBase, "userBase");
    this.groupBaseRdns = requireDn(this.settings.groupBase, "groupBase");
    this.users = new TtlCache(options.clock);
    this.groups = new TtlCache(options.clock);
  }

  async lookup(username: string, opts: { fresh?: boolean } = {}): Promise<DirectoryUser | null> {
    if (!this.settings.namePattern.test(username)) return null;
    const user = await this.users.get(username, opts.fresh === true, this.settings.cacheTtlMs, () =>
      this.fetchUser(username),
    );
    return user && { ...user, groups: [...user.groups] };
  }

  async groupMembers(group: string, opts: { fresh?: boolean } = {}): Promise<string[]> {
    if (!this.settings.namePattern.test(group)) return [];
    const members = await this.groups.get(group, opts.fresh === true, this.settings.cacheTtlMs, () =>
      this.fetchGroupMembers(group),
    );
    return [...members];
  }

  async close(): Promise<void> {
    this.closed = true;
    this.users.clear();
    this.groups.clear();
    await this.drop(this.client);
  }

  private async fetchUser(username: string): Promise<DirectoryUser | null> {
    const { userNameAttribute, memberOfAttribute } = this.settings;
    const entries = await this.searchChildren(
      this.settings.userBase,
      new EqualityFilter({ attribute: userNameAttribute, value: username }),
      [userNameAttribute, "displayName", memberOfAttribute],
    );
    const found = this.childNamed(entries, this.userBaseRdns, userNameAttribute, username);
    if (!found) return null;
    const memberOf = attributeValues(found.entry, memberOfAttribute).map((dn) => this.groupName(dn));
    const byMember = this.settings.searchGroupsByMember ? await this.groupsListing(found.entry.dn) : [];
    const displayName = attributeValues(found.entry, "displayName")[0];
    return {
      username: found.name,
      dn: found.entry.dn,
      ...(displayName ? { displayName } : {}),
      groups: sortedUnique([...memberOf, ...byMember].filter((name): name is string => name !== null)),
    };
  }

  private async groupsListing(userDn: string): Promise<string[]> {
    const { memberAttribute, groupNameAttribute } = this.settings;
    const filter = new EqualityFilter({ attribute: memberAttribute, value: userDn });
    const entries = await this.searchChildren(this.settings.groupBase, filter, [groupNameAttribute]);
    return entries.map((entry) => this.groupName(entry.dn)).filter((name): name is string => name !== null);
  }

  private async fetchGroupMembers(group: string): Promise<string[]> {
    const { groupNameAttribute, memberAttribute, userNameAttribute } = this.settings;
    const filter = new EqualityFilter({ attribute: groupNameAttribute, value: group });
    const entries = await this.searchChildren(this.settings.groupBase, filter, [memberAttribute]);
    const found = this.childNamed(entries, this.groupBaseRdns, groupNameAttribute, group);
    if (!found) return [];
    const names = attributeValues(found.entry, memberAttribute).map((dn) =>
      childName(dn, this.userBaseRdns, userNameAttribute),
    );
    return sortedUnique(names.filter((name): name is string => name !== null));
  }

  private groupName(dn: string): string | null {
    return childName(dn, this.groupBaseRdns, this.settings.groupNameAttribute);
  }

  /**
   * The entry whose own RDN is `attribute=name`. The filter alone is not enough: an entry can carry
   * several values of its naming attribute, and LDAP matching ignores case and extra spaces.
   */
  private childNamed(
    entries: Entry[],
    base: Rdn[],
    attribute: string,
    name: string,
  ): { entry: Entry; name: string } | null {
    for (const entry of entries) {
      const own = childName(entry.dn, base, attribute);
      if (own !== null && own.toLowerCase() === name.toLowerCase()) return { entry, name: own };
    }
    return null;
  }

  // Scope "one": users are direct children of userBase, which keeps service accounts
  // (ou=services,ou=users,…) from ever being mistaken for people.
  private searchChildren(base: string, filter: Filter, attributes: string[]): Promise<Entry[]> {
    return this.withClient(async (client) => {
      const result = await client.search(base, { scope: "one", filter, attributes });
      return result.searchEntries;
    });
  }

  private async withClient<T>(op: (client: Client) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const reused = this.client?.isBound === true;
      const client = await this.boundClient();
      try {
        return await op(client);
      } catch (error) {
        if (error instanceof ResultCodeError) throw this.unavailable("directory error", error);
        await this.drop(client);
        // A connection that worked before may have been closed since (directory restarted): retry once.
        if (!reused || attempt > 1) throw this.unavailable("directory unreachable", error);
      }
    }
  }

  private boundClient(): Promise<Client> {
    if (this.closed) return Promise.reject(new DirectoryUnavailableError("directory unreachable: closed"));
    if (this.client?.isBound) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    await this.drop(this.client);
    const { url, timeoutMs, tlsOptions } = this.settings;
    // autoRebind: if the socket closes between two operations, ldapts reconnects and binds again
    // instead of running the next search anonymously.
    const client = new Client({
      url,
      timeout: timeoutMs,
      connectTimeout: timeoutMs,
      tlsOptions,
      autoRebind: true,
    });
    try {
      await client.bind(this.settings.bindDn, this.settings.bindPassword);
      if (this.closed) throw new Error("closed");
    } catch (error) {
      // A client whose bind failed keeps its socket, and the process, alive.
      await client.unbind().catch(() => undefined);
      throw this.unavailable("directory unreachable", error);
    }
    this.client = client;
    return client;
  }

  private async drop(client: Client | undefined): Promise<void> {
    if (!client) return;
    if (this.client === client) this.client = undefined;
    await client.unbind().catch(() => undefined);
  }

  private unavailable(prefix: string, error: unknown): DirectoryUnavailableError {
    const password = this.settings.bindPassword;
    let reason = describe(error);
    if (password !== "") reason = reason.replaceAll(password, "***");
    return new DirectoryUnavailableError(`${prefix}: ${reason}`, { cause: error });
  }
}

/** A short reason fit for a chat room: "invalid credentials", "connect ECONNREFUSED 127.0.0.1:389". */
function describe(error: unknown): string {
  if (error instanceof ResultCodeError) {
    const kind = error.name
      .replace(/Error$/, "")
      .replace(/([a-z])([A-Z])/g, "$1 $2")
      .toLowerCase();
    const detail = error.message.replace(/\s*Code: 0x[0-9a-f]+$/, "").trim();
    return detail && detail.toLowerCase() !== kind ? `${kind} (${detail})` : kind;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? message;
}

/** ldapts gives a single value as a string and several as an array; attribute names vary in case. */
function attributeValues(entry: Entry, attribute: string): string[] {
  const key = Object.keys(entry).find((name) => name.toLowerCase() === attribute.toLowerCase());
  const raw: unknown = key === undefined ? undefined : entry[key];
  const values: unknown[] = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return values.map((value) => (Buffer.isBuffer(value) ? value.toString("utf8") : String(value)));
}

// ---- DN parsing -----------------------------------------------------------------------------------
// ldapts 8 can build and escape DNs (class DN) but cannot parse one, and the directory hands back DNs
// (memberOf, member, entry DNs) that must be taken apart to learn group and user names. This is
// RFC 4514 string parsing: `\XX` hex pairs (UTF-8 bytes), `\` before a special character, `+` between
// the parts of a multi-valued RDN. The legacy quoted form is rejected (a DN we cannot read names no one).

export interface Ava {
  /** Lowercased attribute type. */
  type: string;
  value: string;
}
export type Rdn = Ava[];

const HEX_PAIR = /^[0-9a-fA-F]{2}$/;
const ESCAPABLE = new Set([" ", '"', "#", "+", ",", ";", "<", "=", ">", "\\"]);

export function parseDn(dn: string): Rdn[] | null {
  if (dn.trim() === "") return [];
  const rdns: Rdn[] = [];
  let rdn: Rdn = [];
  let i = 0;
  for (;;) {
    const ava = parseAva(dn, i);
    if (!ava) return null;
    rdn.push(ava.ava);
    i = ava.end;
    if (i >= dn.length) break;
    const separator = dn[i];
    i++;
    if (separator === "+") continue;
    rdns.push(rdn);
    rdn = [];
  }
  rdns.push(rdn);
  return rdns;
}

function parseAva(dn: string, start: number): { ava: Ava; end: number } | null {
  const equals = dn.indexOf("=", start);
  if (equals < 0) return null;
  const type = dn.slice(start, equals).trim().toLowerCase();
  if (!/^([a-z][a-z0-9-]*|[0-9]+(\.[0-9]+)*)$/.test(type)) return null;
  const value = parseValue(dn, equals + 1);
  return value && { ava: { type, value: value.value }, end: value.end };
}

function parseValue(dn: string, start: number): { value: string; end: number } | null {
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  let i = start;
  while (i < dn.length) {
    const char = dn[i] ?? "";
    if (char === "," || char === "+" || char === ";") break;
    if (char === '"') return null;
    if (char === "\\") {
      const pair = dn.slice(i + 1, i + 3);
      const next = dn[i + 1] ?? "";
      if (HEX_PAIR.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 3;
        continue;
      }
      if (!ESCAPABLE.has(next)) return null;
      bytes.push(...encoder.encode(next));
      i += 2;
      continue;
    }
    const codePoint = dn.codePointAt(i) ?? 0;
    const text = String.fromCodePoint(codePoint);
    bytes.push(...encoder.encode(text));
    i += text.length;
  }
  try {
    return { value: new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes)), end: i };
  } catch {
    return null;
  }
}

function sameRdn(a: Rdn, b: Rdn): boolean {
  return (
    a.length === b.length &&
    a.every((ava, i) => ava.type === b[i]?.type && ava.value.toLowerCase() === b[i]?.value.toLowerCase())
  );
}

/** `name` when `dn` is exactly `<attribute>=<name>,<base>`; null otherwise (elsewhere, deeper, malformed). */
export function childName(dn: string, base: Rdn[], attribute: string): string | null {
  const rdns = parseDn(dn);
  if (!rdns || rdns.length !== base.length + 1) return null;
  if (!base.every((rdn, i) => sameRdn(rdn, rdns[i + 1] ?? []))) return null;
  const own = rdns[0];
  if (own?.length !== 1 || own[0]?.type !== attribute.toLowerCase()) return null;
  return own[0].value;
}

function requireDn(dn: string, what: string): Rdn[] {
  const rdns = parseDn(dn);
  if (!rdns || rdns.length === 0) throw new Error(`${what} is not a valid DN: ${JSON.stringify(dn)}`);
  return rdns;
}

// ---- cache ------------------------------------------------------------------------------------------

class TtlCache<T> {
  private readonly entries = new Map<string, { value: T; expiresAt: number; loadId: number }>();
  private nextLoadId = 1;

  constructor(private readonly clock: Clock) {}

  async get(key: string, fresh: boolean, ttlMs: number, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (!fresh && hit && hit.expiresAt > this.clock.now()) return hit.value;
    const loadId = this.nextLoadId++;
    const value = await load();
    // A slower load started earlier must not overwrite what a later (e.g. fresh) load stored.
    const current = this.entries.get(key);
    if (!current || current.loadId < loadId)
      this.set(key, { value, expiresAt: this.clock.now() + ttlMs, loadId });
    return value;
  }

  clear(): void {
    this.entries.clear();
  }

  private set(key: string, entry: { value: T; expiresAt: number; loadId: number }): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > MAX_CACHED) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }
}
