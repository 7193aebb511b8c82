import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { YamlDirectory } from "../../src/auth/yaml-directory.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function yamlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "majordome-yaml-dir-"));
  dirs.push(dir);
  const path = join(dir, "directory.yaml");
  writeFileSync(path, text);
  return path;
}

describe("YamlDirectory", () => {
  it("defaults to the sandbox's people", async () => {
    const dir = new YamlDirectory();
    expect((await dir.lookup("alice"))?.groups).toEqual(["admin"]);
    expect((await dir.lookup("bob"))?.groups).toEqual(["admin"]);
    expect((await dir.lookup("carol"))?.groups).toEqual(["asso"]);
    expect(await dir.groupMembers("admin")).toEqual(["alice", "bob"]);
    expect(await dir.lookup("dave")).toBeNull();
  });

  it("sorts and deduplicates groups, merging the groups section", async () => {
    const dir = new YamlDirectory({
      users: { zed: { groups: ["ops", "admin", "ops"], display_name: "Zed" }, amy: {} },
      groups: { oncall: { members: ["zed", "amy", "ghost"] }, empty: null },
    });
    expect(await dir.lookup("zed")).toEqual({
      username: "zed",
      dn: "cn=zed,ou=users,dc=sandbox",
      displayName: "Zed",
      groups: ["admin", "oncall", "ops"],
    });
    expect((await dir.lookup("amy"))?.groups).toEqual(["oncall"]);
    expect(await dir.groupMembers("oncall")).toEqual(["amy", "zed"]);
    expect(await dir.groupMembers("empty")).toEqual([]);
    expect(await dir.groupMembers("nope")).toEqual([]);
  });

  it("knows nobody by an inherited property name", async () => {
    const dir = new YamlDirectory({ users: { alice: { groups: ["admin"] } } });
    for (const name of ["__proto__", "constructor", "toString", "*", "alice*", "ALICE"]) {
      expect(await dir.lookup(name)).toBeNull();
    }
  });

  it("hands out copies", async () => {
    const dir = new YamlDirectory();
    (await dir.lookup("carol"))?.groups.push("admin");
    (await dir.groupMembers("admin")).push("carol");
    expect((await dir.lookup("carol"))?.groups).toEqual(["asso"]);
    expect(await dir.groupMembers("admin")).toEqual(["alice", "bob"]);
  });

  it("loads a YAML file", async () => {
    const path = yamlFile("users:\n  alice:\n    groups: [admin]\n    display_name: Alice\n  dave: {}\n");
    const dir = await YamlDirectory.fromFile(path);
    expect(await dir.lookup("alice")).toMatchObject({ displayName: "Alice", groups: ["admin"] });
    expect((await dir.lookup("dave"))?.groups).toEqual([]);
  });

  it("rejects a malformed file, naming it", async () => {
    const path = yamlFile("users:\n  alice:\n    groups: admin\n");
    await expect(YamlDirectory.fromFile(path)).rejects.toThrow(path);
    await expect(YamlDirectory.fromFile(yamlFile("people: {}\n"))).rejects.toThrow(/invalid directory/);
  });
});
