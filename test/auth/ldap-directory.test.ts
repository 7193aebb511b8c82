import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "ldapts";
import { ManualClock } from "../../src/clock.js";
import { LdapDirectory, type LdapDirectoryOptions } from "../../src/auth/ldap-directory.js";
import { matrixIdToUsername } from "../../src/auth/identity.js";
import { directoryOptions, startSlapd, type Slapd } from "../support/slapd.js";

let slapd: Slapd;
const clock = new ManualClock();
const open: LdapDirectory[] = [];

function directory(overrides: Partial<LdapDirectoryOptions> = {}): LdapDirectory {
  const dir = new LdapDirectory({ ...directoryOptions(slapd, clock), ...overrides });
  open.push(dir);
  return dir;
}

async function asRoot(fn: (client: Client) => Promise<void>): Promise<void> {
  const client = new Client({ url: slapd.url });
  try {
    await client.bind(slapd.rootDn, slapd.rootPassword);
    await fn(client);
  } finally {
    await client.unbind();
  }
}

beforeAll(async () => {
  slapd = await startSlapd();
});

afterAll(async () => {
  await Promise.all(open.map((dir) => dir.close()));
  await slapd?.stop();
});

describe("LdapDirectory lookups against a Bottin-shaped slapd", () => {
  it("finds each seeded user with their groups from memberOf", async () => {
    const dir = directory();
    expect(await dir.lookup("alice")).toEqual({
      username: "alice",
      dn: "cn=alice,ou=users,dc=deuxfleurs,dc=fr",
      displayName: "Alice Liddell",
      groups: ["admin", "asso_deuxfleurs"],
    });
    expect((await dir.lookup("bob"))?.groups).toEqual(["admin", "asso_deuxfleurs"]);
    // carol is in one group: ldapts hands a single memberOf value back as a string, not an array.
    expect(await dir.lookup("carol")).toEqual({
      username: "carol",
      dn: "cn=carol,ou=users,dc=deuxfleurs,dc=fr",
      groups: ["asso_deuxfleurs"],
    });
    expect(await dir.lookup("dave")).toEqual({
      username: "dave",
      dn: "cn=dave,ou=users,dc=deuxfleurs,dc=fr",
      groups: [],
    });
  });

  it("answers null for unknown users and for service accounts", async () => {
    const dir = directory();
    expect(await dir.lookup("zoe")).toBeNull();
    expect(await dir.lookup("majordome")).toBeNull();
  });

  it("matches names the way LDAP does but reports the directory's spelling", async () => {
    expect((await directory().lookup("ALICE"))?.username).toBe("alice");
  });

  it("finds groups by searching group members when memberOf is not available", async () => {
    const dir = directory({ memberOfAttribute: "seeAlso", searchGroupsByMember: true });
    expect((await dir.lookup("alice"))?.groups).toEqual(["admin", "asso_deuxfleurs"]);
    expect((await dir.lookup("carol"))?.groups).toEqual(["asso_deuxfleurs"]);
    expect((await dir.lookup("dave"))?.groups).toEqual([]);
    const withoutSearch = directory({ memberOfAttribute: "seeAlso" });
    expect((await withoutSearch.lookup("alice"))?.groups).toEqual([]);
  });

  it("ignores memberOf values outside groupBase", async () => {
    await slapd.addUser("frank", ["ops"]);
    await asRoot((client) =>
      client.add("cn=shadow,ou=services,ou=users,dc=deuxfleurs,dc=fr", {
        objectClass: ["groupOfNames"],
        cn: "shadow",
        member: slapd.userDn("frank"),
      }),
    );
    const dir = directory({ searchGroupsByMember: true });
    expect((await dir.lookup("frank"))?.groups).toEqual(["ops"]);
  });

  it("lists group members, ignoring member values that are not users", async () => {
    const dir = directory();
    expect(await dir.groupMembers("admin")).toEqual(["alice", "bob"]);
    expect(await dir.groupMembers("asso_deuxfleurs")).toEqual(["alice", "bob", "carol"]);
    expect(await dir.groupMembers("no_such_group")).toEqual([]);
    await slapd.addUser("grace", ["lonely"]);
    await slapd.removeFromGroup("grace", "lonely"); // leaves only the cn=nobody placeholder
    expect(await dir.groupMembers("lonely", { fresh: true })).toEqual([]);
  });
});

describe("identity and directory together", () => {
  it("maps a namesake on another homeserver to nobody", async () => {
    const dir = directory();
    const identity = { homeserverDomain: "deuxfleurs.fr" };
    expect(matrixIdToUsername("@alice:evil.example", identity)).toBeNull();
    expect(matrixIdToUsername("@alice:deuxfleurs.fr.evil.example", identity)).toBeNull();
    const local = matrixIdToUsername("@alice:deuxfleurs.fr", identity);
    expect(local).toBe("alice");
    expect((await dir.lookup(local ?? ""))?.groups).toContain("admin");
  });
});

describe("names that try to change the query", () => {
  const hostile = [
    "*",
    "alice*",
    "*)(cn=*",
    "alice)(|(cn=*",
    "alice)(cn=bob",
    "(cn=alice)",
    "alice,ou=users",
    "cn=alice,ou=users,dc=deuxfleurs,dc=fr",
    "alice+sn=alice",
    'alice"',
    "alice\\",
    "\\2a",
    "#alice",
    "alice=",
    "alice\0",
    "a\0lice",
    " alice",
    "alice ",
    "",
  ];

  it.each(hostile)("lookup(%j) is no such user", async (name) => {
    const dir = directory();
    await expect(dir.lookup(name)).resolves.toBeNull();
    await expect(dir.lookup(name, { fresh: true })).resolves.toBeNull();
  });

  it.each(["*", "adm*", "admin)(cn=*", "admin,ou=groups", "admin\0"])(
    "groupMembers(%j) is empty",
    async (name) => {
      await expect(directory().groupMembers(name)).resolves.toEqual([]);
    },
  );
});

describe("cache", () => {
  it("keeps a user for cacheTtlMs on the clock unless fresh is asked", async () => {
    const dir = directory({ cacheTtlMs: 60_000 });
    await slapd.addUser("erin", ["asso_deuxfleurs"]);
    expect((await dir.lookup("erin"))?.groups).toEqual(["asso_deuxfleurs"]);

    await slapd.addToGroup("erin", "admin");
    expect((await dir.lookup("erin"))?.groups).toEqual(["asso_deuxfleurs"]);
    expect((await dir.lookup("erin", { fresh: true }))?.groups).toEqual(["admin", "asso_deuxfleurs"]);
    // fresh also refreshed the cache
    expect((await dir.lookup("erin"))?.groups).toEqual(["admin", "asso_deuxfleurs"]);

    await slapd.removeFromGroup("erin", "admin");
    await clock.advance(59_999);
    expect((await dir.lookup("erin"))?.groups).toEqual(["admin", "asso_deuxfleurs"]);
    await clock.advance(1);
    expect((await dir.lookup("erin"))?.groups).toEqual(["asso_deuxfleurs"]);
  });

  it("sees a removal from a group at once with fresh", async () => {
    const dir = directory();
    await slapd.addUser("heidi", ["admin"]);
    expect((await dir.lookup("heidi"))?.groups).toEqual(["admin"]);
    await slapd.removeFromGroup("heidi", "admin");
    expect((await dir.lookup("heidi", { fresh: true }))?.groups).toEqual([]);
  });

  it("caches unknown users too, and sees them appear with fresh", async () => {
    const dir = directory();
    expect(await dir.lookup("ivan")).toBeNull();
    await slapd.addUser("ivan", ["admin"]);
    expect(await dir.lookup("ivan")).toBeNull();
    expect((await dir.lookup("ivan", { fresh: true }))?.groups).toEqual(["admin"]);
  });

  it("sees a deleted user disappear with fresh", async () => {
    const dir = directory();
    await slapd.addUser("judy", ["admin"]);
    expect((await dir.lookup("judy"))?.groups).toEqual(["admin"]);
    await slapd.deleteUser("judy");
    expect(await dir.lookup("judy")).not.toBeNull();
    expect(await dir.lookup("judy", { fresh: true })).toBeNull();
    expect(await dir.groupMembers("admin", { fresh: true })).not.toContain("judy");
  });

  it("caches group members with the same TTL", async () => {
    const dir = directory();
    expect(await dir.groupMembers("oncall")).toEqual([]);
    await slapd.addUser("karl", ["oncall"]);
    expect(await dir.groupMembers("oncall")).toEqual([]);
    expect(await dir.groupMembers("oncall", { fresh: true })).toEqual(["karl"]);
  });

  it("hands out copies, so a caller cannot change what is cached", async () => {
    const dir = directory();
    const first = await dir.lookup("carol");
    first?.groups.push("admin");
    expect((await dir.lookup("carol"))?.groups).toEqual(["asso_deuxfleurs"]);
  });
});
