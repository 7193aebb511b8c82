import { describe, expect, it } from "vitest";
import { childName, parseDn } from "../../src/auth/ldap-directory.js";

const groupBase = parseDn("ou=groups,dc=deuxfleurs,dc=fr") ?? [];

describe("parseDn", () => {
  it("parses RDNs, lowercasing attribute types", () => {
    expect(parseDn("CN=admin, OU=groups,dc=deuxfleurs")).toEqual([
      [{ type: "cn", value: "admin" }],
      [{ type: "ou", value: "groups" }],
      [{ type: "dc", value: "deuxfleurs" }],
    ]);
  });

  it("decodes backslash escapes and UTF-8 hex pairs", () => {
    expect(parseDn('cn=a\\,b\\+c\\"d\\\\e\\=f\\#g\\<h\\>i\\;j,dc=x')?.[0]).toEqual([
      { type: "cn", value: 'a,b+c"d\\e=f#g<h>i;j' },
    ]);
    expect(parseDn("cn=a\\2Cb\\00c\\C3\\A9,dc=x")?.[0]).toEqual([{ type: "cn", value: "a,b\0cé" }]);
  });

  it("keeps multi-valued RDNs together", () => {
    expect(parseDn("cn=a+uid=b,dc=x")).toEqual([
      [
        { type: "cn", value: "a" },
        { type: "uid", value: "b" },
      ],
      [{ type: "dc", value: "x" }],
    ]);
  });

  it.each(["cn", "cn=a\\", "cn=a\\zz", 'cn="quoted"', "=a", "c n=a", "cn=\\C3"])("rejects %j", (dn) => {
    expect(parseDn(dn)).toBeNull();
  });
});

describe("childName", () => {
  it("names a direct child of the base by its naming attribute", () => {
    expect(childName("cn=admin,ou=groups,dc=deuxfleurs,dc=fr", groupBase, "cn")).toBe("admin");
    expect(childName("CN=Admin,OU=Groups,DC=Deuxfleurs,DC=fr", groupBase, "cn")).toBe("Admin");
    expect(childName("cn=ops\\2Cadmin,ou=groups,dc=deuxfleurs,dc=fr", groupBase, "cn")).toBe("ops,admin");
  });

  it.each([
    "cn=admin,ou=groups,dc=evil,dc=fr",
    "cn=admin,ou=services,ou=users,dc=deuxfleurs,dc=fr",
    "cn=admin,cn=x,ou=groups,dc=deuxfleurs,dc=fr",
    "ou=groups,dc=deuxfleurs,dc=fr",
    "uid=admin,ou=groups,dc=deuxfleurs,dc=fr",
    "cn=admin+uid=x,ou=groups,dc=deuxfleurs,dc=fr",
    "cn=admin,ou=groups,dc=deuxfleurs,dc=fr,dc=evil",
    "cn=admin\\,ou=groups,dc=deuxfleurs,dc=fr",
    "not a dn",
  ])("ignores %j", (dn) => {
    expect(childName(dn, groupBase, "cn")).toBeNull();
  });
});
