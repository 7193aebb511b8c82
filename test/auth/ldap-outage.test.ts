/** The directory going away, coming back, refusing the service account: majordome fails closed. */
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { DirectoryUnavailableError } from "../../src/auth/directory.js";
import { LdapDirectory, type LdapDirectoryOptions } from "../../src/auth/ldap-directory.js";
import { directoryOptions, startSlapd, type Slapd } from "../support/slapd.js";

let slapd: Slapd;
const open: LdapDirectory[] = [];
const servers: Server[] = [];

function directory(overrides: Partial<LdapDirectoryOptions> = {}): LdapDirectory {
  const dir = new LdapDirectory({ ...directoryOptions(slapd, new ManualClock()), ...overrides });
  open.push(dir);
  return dir;
}

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("no address");
  return `ldap://127.0.0.1:${address.port}`;
}

/** A TCP relay to slapd that counts connections and can cut the next connection that sends a request. */
async function relay(): Promise<{
  url: string;
  connections: () => number;
  cutNextRequest: (times: number) => void;
}> {
  let connections = 0;
  let cuts = 0;
  const port = Number(new URL(slapd.url).port);
  const url = await listen(
    createServer((client: Socket) => {
      connections++;
      const upstream = connect(port, "127.0.0.1");
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
      upstream.pipe(client);
      client.on("data", (chunk) => {
        if (cuts > 0) {
          cuts--;
          client.destroy();
          upstream.destroy();
        } else upstream.write(chunk);
      });
      client.on("close", () => upstream.destroy());
    }),
  );
  return { url, connections: () => connections, cutNextRequest: (times) => (cuts = times) };
}

async function failure(promise: Promise<unknown>): Promise<DirectoryUnavailableError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(error instanceof DirectoryUnavailableError))
    throw new Error(`expected DirectoryUnavailableError, got ${String(error)}`);
  return error;
}

beforeAll(async () => {
  slapd = await startSlapd();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((dir) => dir.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

afterAll(async () => {
  await slapd?.stop();
});

describe("LdapDirectory when the directory fails", () => {
  it("fails closed while slapd is down and works again after it restarts, with the same instance", async () => {
    const dir = directory();
    expect((await dir.lookup("alice"))?.groups).toEqual(["admin", "asso_deuxfleurs"]);

    await slapd.kill();
    const down = await failure(dir.lookup("alice", { fresh: true }));
    expect(down.message).toMatch(/^directory unreachable: .*ECONNREFUSED/);
    await failure(dir.lookup("bob"));
    await failure(dir.groupMembers("admin", { fresh: true }));

    await slapd.restart();
    expect((await dir.lookup("alice", { fresh: true }))?.groups).toEqual(["admin", "asso_deuxfleurs"]);
    expect(await dir.groupMembers("admin", { fresh: true })).toEqual(["alice", "bob"]);
  });

  it("notices a restart between two lookups without an error", async () => {
    const dir = directory();
    expect(await dir.lookup("carol", { fresh: true })).not.toBeNull();
    await slapd.restart();
    expect(await dir.lookup("carol", { fresh: true })).not.toBeNull();
  });

  it("reuses one connection for many lookups", async () => {
    const proxy = await relay();
    const dir = directory({ url: proxy.url });
    for (let i = 0; i < 20; i++) await dir.lookup(i % 2 ? "alice" : "carol", { fresh: true });
    expect(proxy.connections()).toBe(1);
  });

  it("retries once on a fresh connection when an established one breaks mid-request", async () => {
    const proxy = await relay();
    const dir = directory({ url: proxy.url });
    expect(await dir.lookup("alice", { fresh: true })).not.toBeNull();
    proxy.cutNextRequest(1);
    expect((await dir.lookup("alice", { fresh: true }))?.username).toBe("alice");
    expect(proxy.connections()).toBe(2);
  });

  it("gives up after that one retry", async () => {
    const proxy = await relay();
    const dir = directory({ url: proxy.url });
    expect(await dir.lookup("alice", { fresh: true })).not.toBeNull();
    proxy.cutNextRequest(2);
    const error = await failure(dir.lookup("alice", { fresh: true }));
    expect(error.message).toMatch(/^directory unreachable: /);
    expect(proxy.connections()).toBe(2);
    expect(await dir.lookup("alice", { fresh: true })).not.toBeNull();
  });

  it("refuses to guess when the service password is wrong, without revealing it", async () => {
    const password = `wrong-${slapd.servicePassword}`;
    const dir = directory({ bindPassword: password });
    const error = await failure(dir.lookup("alice"));
    expect(error.message).toMatch(/^directory unreachable: invalid credentials/);
    expect(error.message).not.toContain(password);
    expect(error.message).not.toContain(slapd.servicePassword);
  });

  it("reports an unknown service account the same way", async () => {
    const dir = directory({ bindDn: "cn=nobody,ou=services,ou=users,dc=deuxfleurs,dc=fr" });
    expect((await failure(dir.lookup("alice"))).message).toMatch(
      /^directory unreachable: invalid credentials/,
    );
  });

  it("times out on a server that accepts connections but never answers", async () => {
    const sockets: Socket[] = [];
    const url = await listen(createServer((socket) => void sockets.push(socket)));
    const dir = directory({ url, timeoutMs: 100 });
    const error = await failure(dir.lookup("alice"));
    expect(error.message).toMatch(/^directory unreachable: .*timed out/i);
    for (const socket of sockets) socket.destroy();
  });

  it("refuses lookups once closed", async () => {
    const dir = directory();
    await dir.close();
    expect((await failure(dir.lookup("alice"))).message).toBe("directory unreachable: closed");
  });
});
