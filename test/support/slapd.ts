/**
 * A real OpenLDAP slapd shaped like Bottin (the collective's directory), private to one test file:
 * its own config and database in a temp dir, on a free loopback port. Installed by scripts/install-test-deps.sh.
 */
import type { LdapDirectoryOptions } from "../../src/auth/ldap-directory.js";
import type { Clock } from "../../src/clock.js";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { Attribute, Change, Client, DN, NoSuchObjectError } from "ldapts";

export interface SeedUser {
  name: string;
  groups?: string[];
  displayName?: string;
}

export interface SeedGroup {
  name: string;
  /** Usernames; more can come from SeedUser.groups. */
  members?: string[];
}

/** The options for an LdapDirectory that reads this slapd as majordome's service account. */
export function directoryOptions(slapd: Slapd, clock: Clock): LdapDirectoryOptions {
  return {
    url: slapd.url,
    bindDn: slapd.serviceBindDn,
    bindPassword: slapd.servicePassword,
    userBase: slapd.userBase,
    groupBase: slapd.groupBase,
    clock,
  };
}

export interface Slapd {
  url: string;
  baseDn: string;
  userBase: string;
  groupBase: string;
  serviceBindDn: string;
  servicePassword: string;
  rootDn: string;
  rootPassword: string;
  userDn(name: string): string;
  groupDn(name: string): string;
  addUser(name: string, groups?: string[], displayName?: string): Promise<void>;
  addToGroup(user: string, group: string): Promise<void>;
  removeFromGroup(user: string, group: string): Promise<void>;
  deleteUser(name: string): Promise<void>;
  /** Kills slapd and removes its temp dir. */
  stop(): Promise<void>;
  /** Kills slapd, keeping its data, so a test can observe the directory being down. */
  kill(): Promise<void>;
  /** Starts slapd again on the same port with the same data (after kill(), or from a running state). */
  restart(): Promise<void>;
}

const BASE_DN = "dc=deuxfleurs,dc=fr";
const USER_BASE = `ou=users,${BASE_DN}`;
const GROUP_BASE = `ou=groups,${BASE_DN}`;
const SERVICE_BASE = `ou=services,${USER_BASE}`;
const ROOT_DN = `cn=admin,${BASE_DN}`;
// groupOfNames needs at least one member: this dangling DN stands in for "nobody" (refint uses it too).
const NOBODY_DN = `cn=nobody,${BASE_DN}`;
const SCHEMA_DIR = "/etc/ldap/schema";
const MODULE_DIR = "/usr/lib/ldap";

export const DEFAULT_USERS: SeedUser[] = [
  { name: "alice", groups: ["admin", "asso_deuxfleurs"], displayName: "Alice Liddell" },
  { name: "bob", groups: ["admin", "asso_deuxfleurs"], displayName: "Bob" },
  { name: "carol", groups: ["asso_deuxfleurs"] },
  { name: "dave", groups: [] },
];
export const DEFAULT_GROUPS: SeedGroup[] = [{ name: "admin" }, { name: "asso_deuxfleurs" }];

const rdnDn = (name: string, base: string): string => `${new DN({ cn: name }).toString()},${base}`;
const userDn = (name: string): string => rdnDn(name, USER_BASE);
const groupDn = (name: string): string => rdnDn(name, GROUP_BASE);

export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/sbin"];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

function requireBinaries(): { slapd: string; slapadd: string } {
  const slapd = findBinary("slapd");
  const slapadd = findBinary("slapadd");
  if (!slapd || !slapadd || !existsSync(join(MODULE_DIR, "back_mdb.la"))) {
    throw new Error("OpenLDAP slapd is not installed: run scripts/install-test-deps.sh (as root) first");
  }
  return { slapd, slapadd };
}

function slapdConf(dir: string, rootPassword: string): string {
  const serviceBinders = `^cn=[^,]+,ou=services,ou=users,dc=deuxfleurs,dc=fr$`;
  return `
include ${SCHEMA_DIR}/core.schema
include ${SCHEMA_DIR}/cosine.schema
include ${SCHEMA_DIR}/inetorgperson.schema
pidfile ${join(dir, "slapd.pid")}
argsfile ${join(dir, "slapd.args")}
modulepath ${MODULE_DIR}
moduleload back_mdb
moduleload memberof
moduleload refint

database mdb
suffix "${BASE_DN}"
rootdn "${ROOT_DN}"
rootpw ${rootPassword}
directory ${join(dir, "data")}
maxsize 16777216
dbnosync

# Like Bottin's ACLs: nobody reads userPassword (it is only used to bind), service accounts read
# everything else, other authenticated users read the rest, anonymous clients read nothing.
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.regex="${serviceBinders}" read
  by users read
  by * none

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

overlay refint
refint_attributes member
refint_nothing "${NOBODY_DN}"
`;
}

const SKELETON_LDIF = `dn: ${BASE_DN}
objectClass: dcObject
objectClass: organization
dc: deuxfleurs
o: Deuxfleurs

dn: ${USER_BASE}
objectClass: organizationalUnit
ou: users

dn: ${SERVICE_BASE}
objectClass: organizationalUnit
ou: services

dn: ${GROUP_BASE}
objectClass: organizationalUnit
ou: groups
`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function tcpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Every slapd this process started, killed on exit even if a test file forgot its afterAll. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

class SlapdProcess {
  private child: ChildProcess | undefined;

  constructor(
    private readonly binary: string,
    private readonly dir: string,
    private readonly port: number,
  ) {}

  async start(): Promise<void> {
    const logPath = join(this.dir, "slapd.log");
    const log = openSync(logPath, "a");
    const args = ["-f", join(this.dir, "slapd.conf"), "-h", `ldap://127.0.0.1:${this.port}/`, "-d", "0"];
    const child = spawn(this.binary, args, { stdio: ["ignore", log, log], detached: false });
    closeSync(log);
    child.unref();
    running.add(child);
    child.once("exit", () => running.delete(child));
    this.child = child;
    await this.waitUntilAnswering(child, logPath);
  }

  private async waitUntilAnswering(child: ChildProcess, logPath: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`slapd exited during start-up:\n${readFileSync(logPath, "utf8")}`);
      }
      if (await tcpAnswers(this.port)) return;
      await delay(10);
    }
    await this.kill();
    throw new Error(
      `slapd did not answer on port ${this.port} within 10 s:\n${readFileSync(logPath, "utf8")}`,
    );
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    child.kill("SIGTERM");
    if (!(await waitForExit(child, 5_000))) {
      child.kill("SIGKILL");
      await waitForExit(child, 5_000);
    }
  }
}

class Seeder {
  constructor(
    private readonly url: string,
    private readonly rootPassword: string,
  ) {}

  async run<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({ url: this.url, timeout: 5_000, connectTimeout: 5_000 });
    try {
      await client.bind(ROOT_DN, this.rootPassword);
      return await fn(client);
    } finally {
      await client.unbind();
    }
  }

  addService(client: Client, name: string, password: string): Promise<void> {
    return client.add(rdnDn(name, SERVICE_BASE), {
      objectClass: ["applicationProcess", "simpleSecurityObject"],
      cn: name,
      userPassword: password,
    });
  }

  addUser(client: Client, name: string, displayName?: string): Promise<void> {
    return client.add(userDn(name), {
      objectClass: ["inetOrgPerson"],
      cn: name,
      sn: name,
      ...(displayName ? { displayName } : {}),
      userPassword: randomBytes(12).toString("hex"),
    });
  }

  async members(client: Client, group: string): Promise<string[] | null> {
    try {
      const { searchEntries } = await client.search(groupDn(group), {
        scope: "base",
        attributes: ["member"],
      });
      const raw = searchEntries[0]?.["member"];
      return raw === undefined ? [] : ([] as unknown[]).concat(raw).map(String);
    } catch (error) {
      if (error instanceof NoSuchObjectError) return null;
      throw error;
    }
  }

  async addMembers(client: Client, group: string, memberDns: string[]): Promise<void> {
    const current = await this.members(client, group);
    if (current === null) {
      const member = memberDns.length > 0 ? memberDns : [NOBODY_DN];
      await client.add(groupDn(group), { objectClass: ["groupOfNames"], cn: group, member });
      return;
    }
    const added = memberDns.filter((dn) => !current.includes(dn));
    if (added.length === 0) return;
    const changes = [
      new Change({ operation: "add", modification: new Attribute({ type: "member", values: added }) }),
    ];
    if (current.includes(NOBODY_DN)) changes.push(memberChange("delete", NOBODY_DN));
    await client.modify(groupDn(group), changes);
  }

  async removeMember(client: Client, group: string, memberDn: string): Promise<void> {
    const current = await this.members(client, group);
    if (!current?.includes(memberDn)) return;
    // The last member is swapped for the placeholder: groupOfNames requires one.
    const changes =
      current.length === 1
        ? [memberChange("add", NOBODY_DN), memberChange("delete", memberDn)]
        : [memberChange("delete", memberDn)];
    await client.modify(groupDn(group), changes);
  }
}

function memberChange(operation: "add" | "delete", dn: string): Change {
  return new Change({ operation, modification: new Attribute({ type: "member", values: [dn] }) });
}

function groupsToSeed(users: SeedUser[], groups: SeedGroup[]): Map<string, string[]> {
  const result = new Map<string, string[]>();
  const add = (group: string, user?: string) => {
    const members = result.get(group) ?? [];
    if (user !== undefined && !members.includes(user)) members.push(user);
    result.set(group, members);
  };
  for (const group of groups) {
    add(group.name);
    for (const member of group.members ?? []) add(group.name, member);
  }
  for (const user of users) for (const group of user.groups ?? []) add(group, user.name);
  return result;
}

function loadSkeleton(slapadd: string, dir: string): void {
  writeFileSync(join(dir, "skeleton.ldif"), SKELETON_LDIF);
  const result = spawnSync(slapadd, ["-f", join(dir, "slapd.conf"), "-l", join(dir, "skeleton.ldif")], {
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`slapadd failed: ${result.stderr || String(result.error)}`);
}

export async function startSlapd(opts: { users?: SeedUser[]; groups?: SeedGroup[] } = {}): Promise<Slapd> {
  const { slapd, slapadd } = requireBinaries();
  const dir = mkdtempSync(join(tmpdir(), "majordome-slapd-"));
  const rootPassword = randomBytes(16).toString("hex");
  const servicePassword = randomBytes(16).toString("hex");
  let proc: SlapdProcess | undefined;
  try {
    writeFileSync(join(dir, "slapd.conf"), slapdConf(dir, rootPassword));
    mkdirSync(join(dir, "data"));
    loadSkeleton(slapadd, dir);
    const port = await freePort();
    proc = new SlapdProcess(slapd, dir, port);
    await proc.start();
    const url = `ldap://127.0.0.1:${port}`;
    const seeder = new Seeder(url, rootPassword);
    const users = opts.users ?? DEFAULT_USERS;
    await seeder.run(async (client) => {
      await seeder.addService(client, "majordome", servicePassword);
      for (const user of users) await seeder.addUser(client, user.name, user.displayName);
      for (const [group, members] of groupsToSeed(users, opts.groups ?? DEFAULT_GROUPS)) {
        await seeder.addMembers(client, group, members.map(userDn));
      }
    });
    return handle(url, dir, proc, seeder, rootPassword, servicePassword);
  } catch (error) {
    await proc?.kill();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

function handle(
  url: string,
  dir: string,
  proc: SlapdProcess,
  seeder: Seeder,
  rootPassword: string,
  servicePassword: string,
): Slapd {
  return {
    url,
    baseDn: BASE_DN,
    userBase: USER_BASE,
    groupBase: GROUP_BASE,
    serviceBindDn: rdnDn("majordome", SERVICE_BASE),
    servicePassword,
    rootDn: ROOT_DN,
    rootPassword,
    userDn,
    groupDn,
    addUser: (name, groups = [], displayName) =>
      seeder.run(async (client) => {
        await seeder.addUser(client, name, displayName);
        for (const group of groups) await seeder.addMembers(client, group, [userDn(name)]);
      }),
    addToGroup: (user, group) => seeder.run((client) => seeder.addMembers(client, group, [userDn(user)])),
    removeFromGroup: (user, group) =>
      seeder.run((client) => seeder.removeMember(client, group, userDn(user))),
    deleteUser: (name) => seeder.run((client) => client.del(userDn(name))),
    stop: async () => {
      await proc.kill();
      rmSync(dir, { recursive: true, force: true });
    },
    kill: () => proc.kill(),
    restart: async () => {
      await proc.kill();
      await proc.start();
    },
  };
}
