/**
 * With name validation relaxed, hostile and odd names reach slapd: the escaping alone must keep them
 * from matching anyone else, and DNs the server sends back with escapes must parse to the right names.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { LdapDirectory, parseDn } from "../../src/auth/ldap-directory.js";
import { directoryOptions, startSlapd, type Slapd } from "../support/slapd.js";

const ODD_NAMES = [
  "a,b",
  "a+b",
  'q"r',
  "back\\slash",
  "#hash",
  "eq=ual",
  "semi;colon",
  "lt<gt>",
  "star*",
  "paren(x)",
  "équipe-ü",
  "starfish",
];
const ODD_GROUP = "ops,admin+x=\\y";

let slapd: Slapd;
let dir: LdapDirectory;

beforeAll(async () => {
  slapd = await startSlapd({
    users: [
      { name: "alice", groups: ["admin"] },
      { name: "bob", groups: [] },
      ...ODD_NAMES.map((name) => ({ name, groups: [ODD_GROUP] })),
    ],
    groups: [{ name: "admin" }],
  });
  dir = new LdapDirectory({
    ...directoryOptions(slapd, new ManualClock()),
    namePattern: /^[^]+$/,
    searchGroupsByMember: true,
  });
});

afterAll(async () => {
  await dir?.close();
  await slapd?.stop();
});

describe("escaping with permissive names", () => {
  it.each(ODD_NAMES)("finds exactly the user named %j", async (name) => {
    const user = await dir.lookup(name, { fresh: true });
    expect(user?.username).toBe(name);
    // slapd sends special characters back as hex pairs (cn=a\2Cb), so compare parsed DNs
    expect(parseDn(user?.dn ?? "")).toEqual(parseDn(slapd.userDn(name)));
    expect(user?.groups).toEqual([ODD_GROUP]);
  });

  it("lists the members of a group with special characters in its name", async () => {
    expect(await dir.groupMembers(ODD_GROUP)).toEqual([...ODD_NAMES].sort());
  });

  it.each([
    "*",
    "*)(cn=*",
    "alice)(|(cn=*",
    "alice)(cn=bob",
    "al*",
    "a*b",
    "\\2a",
    "alice,ou=users",
    "alice\0",
    "a\0lice",
    " alice",
    "alice ",
    "a, b",
    "star",
  ])("lookup(%j) matches nobody", async (name) => {
    await expect(dir.lookup(name, { fresh: true })).resolves.toBeNull();
  });

  it("does not treat * in a name as a wildcard", async () => {
    expect((await dir.lookup("star*", { fresh: true }))?.username).toBe("star*");
    expect(await dir.groupMembers("*")).toEqual([]);
    expect(await dir.groupMembers("ops*")).toEqual([]);
  });
});
