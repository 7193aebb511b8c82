/**
 * A directory described in YAML, for the sandbox and for tests of the layers above the directory:
 *
 *   users:
 *     alice: { groups: [admin], display_name: Alice }
 *   groups:            # optional: more members, or groups nobody is in yet
 *     oncall: { members: [alice] }
 */
import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { z } from "zod";
import { sortedUnique, type Directory, type DirectoryUser } from "./directory.js";

const name = z.string().min(1);
const schema = z.strictObject({
  users: z.record(
    name,
    z.strictObject({ groups: z.array(name).default([]), display_name: z.string().optional() }),
  ),
  groups: z.record(name, z.strictObject({ members: z.array(name).default([]) }).nullable()).optional(),
});

export type YamlDirectoryData = z.input<typeof schema>;

/** The sandbox's people: alice and bob administer, carol is a member of the association. */
export const SANDBOX_DIRECTORY: YamlDirectoryData = {
  users: {
    alice: { groups: ["admin"], display_name: "Alice" },
    bob: { groups: ["admin"], display_name: "Bob" },
    carol: { groups: ["asso"], display_name: "Carol" },
  },
};

interface YamlUser {
  displayName: string | undefined;
  groups: string[];
}

export class YamlDirectory implements Directory {
  private readonly users = new Map<string, YamlUser>();
  private readonly members = new Map<string, string[]>();

  constructor(data: unknown = SANDBOX_DIRECTORY) {
    const parsed = schema.safeParse(data);
    if (!parsed.success) throw new Error(`invalid directory: ${z.prettifyError(parsed.error)}`);
    const extra = new Map<string, string[]>();
    for (const [group, spec] of Object.entries(parsed.data.groups ?? {}))
      extra.set(group, spec?.members ?? []);
    this.load(parsed.data.users, extra);
  }

  static async fromFile(path: string): Promise<YamlDirectory> {
    const text = await readFile(path, "utf8");
    try {
      return new YamlDirectory(parse(text));
    } catch (error) {
      throw new Error(`${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  async lookup(username: string): Promise<DirectoryUser | null> {
    const user = this.users.get(username);
    if (!user) return null;
    return {
      username,
      dn: `cn=${username},ou=users,dc=sandbox`,
      ...(user.displayName ? { displayName: user.displayName } : {}),
      groups: [...user.groups],
    };
  }

  async groupMembers(group: string): Promise<string[]> {
    return [...(this.members.get(group) ?? [])];
  }

  async close(): Promise<void> {}

  private load(
    users: Record<string, { groups: string[]; display_name?: string | undefined }>,
    extraMembers: Map<string, string[]>,
  ): void {
    const groupsOf = new Map<string, string[]>();
    for (const [username, spec] of Object.entries(users)) groupsOf.set(username, [...spec.groups]);
    for (const [group, members] of extraMembers) {
      this.members.set(group, []);
      // Members that are not users are left out: a lookup would not find them.
      for (const member of members) groupsOf.get(member)?.push(group);
    }
    for (const [username, spec] of Object.entries(users)) {
      const groups = sortedUnique(groupsOf.get(username) ?? []);
      this.users.set(username, { displayName: spec.display_name, groups });
      for (const group of groups) this.members.set(group, [...(this.members.get(group) ?? []), username]);
    }
    for (const [group, members] of this.members) this.members.set(group, sortedUnique(members));
  }
}
