/**
 * `!bucket` end to end: majordome in process, the Garage double (admin API v2 + S3 checking SigV4),
 * the Consul double for the credentials, the homeserver double for the room.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startMajordome, type Majordome } from "../../src/app.js";
import { loadPolicies } from "../../src/auth/policy.js";
import { YamlDirectory } from "../../src/auth/yaml-directory.js";
import { SystemClock } from "../../src/clock.js";
import { configSchema } from "../../src/config/schema.js";
import { startConsulDouble } from "../../src/sandbox/consul/index.js";
import { startGarageDouble } from "../../src/sandbox/garage/index.js";
import { createBucket } from "../../handlers/bucket.js";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { spawnMajordome, waitHealthy } from "../support/process.js";
import { DOMAIN, handledBy, startWorld, type World, writeWorldConfig } from "../support/world.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const w: World = await startWorld();
  cleanups.push(() => w.close());
  const consul = await startConsulDouble();
  cleanups.push(() => consul.close());
  const garage = await startGarageDouble({ adminToken: "admin-token-for-tests" });
  cleanups.push(() => garage.close());
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const app: Majordome = await startMajordome({
    config: configSchema.parse({
      matrix: {
        homeserver_url: w.hs.url,
        access_token: w.bot.accessToken,
        user_domain: DOMAIN,
        command_rooms: [w.roomId],
      },
      consul: { address: consul.url },
      garage: {
        admin_url: garage.adminUrl,
        admin_token: "admin-token-for-tests",
        s3_endpoint: garage.s3Url,
        s3_region: garage.region,
      },
      state: { path: await mkdtemp(join(tmpdir(), "majordome-bucket-")), fsync: false },
      timings: { sync_timeout: "2s" },
    }),
    clock: new SystemClock(),
    log: pino({ level: "debug" }, sink),
    directory: new YamlDirectory(),
    policies: await loadPolicies("policies"),
    http: false,
  });
  cleanups.push(() => app.stop());
  await app.synced();
  const ask = async (user: string, line: string) => {
    const command = w.say(user, line);
    await handledBy(app, command);
    return w
      .repliesTo(command)
      .map((r) => String((r.content as { body: string }).body))
      .join("\n");
  };
  return { w, app, consul, garage, logs, ask };
}

describe("!bucket through chat, Garage and Consul doubles", () => {
  it("creates a bucket and a key that works (S3 probe), credentials in Consul only; a second create changes nothing", async () => {
    const s = await setup();
    const reply = await s.ask("alice", "!bucket create photos --quota 10G --max-objects 1000 --website");
    expect(reply).toMatch(
      /Bucket `photos` created; key `GK[0-9a-f]{24}` may read and write.*website on\. An S3 probe with the new key worked/s,
    );
    const accessKey = s.consul.kv("secrets/photos/s3_access_key")!;
    const secretKey = s.consul.kv("secrets/photos/s3_secret_key")!;
    expect(accessKey).toMatch(/^GK/);
    expect(secretKey).toMatch(/^[0-9a-f]{64}$/);
    expect(s.garage.bucketNames()).toEqual(["photos"]);
    expect(s.garage.objectCount("photos")).toBe(0); // the probe cleaned up after itself
    expect(await s.ask("alice", "!bucket create photos")).toMatch(/already exists .*Nothing was changed/);
    expect(await s.ask("carol", "!bucket info photos")).toMatch(/0 objects.*website on/s);
    const room = JSON.stringify(s.w.hs.timeline(s.w.roomId).map((e) => e.content));
    expect(room).not.toContain(secretKey);
    expect(s.logs.join("")).not.toContain(secretKey);
  });

  it.each([
    "x; DROP DATABASE y",
    "../../etc",
    "UPPER",
    "a".repeat(300),
    "bucket..x",
    "192.168.1.1",
    "phоtos",
  ])("refuses the name %j before any call", async (hostile) => {
    const s = await setup();
    const reply = await s.ask("alice", `!bucket create '${hostile}'`);
    expect(reply).toMatch(/Bad name .*expected a valid bucket name/);
    expect(s.garage.bucketNames()).toEqual([]);
    expect(s.garage.keyIds()).toEqual([]);
  });

  it.each([
    ["CreateKey", /Garage refused CreateKey/],
    ["AllowBucketKey", /Garage refused AllowBucketKey/],
    ["UpdateBucket", /Garage refused UpdateBucket/],
    ["PutObject", /S3 probe with the new key failed/],
  ])("a failure at %s rolls back the bucket, the key and the secrets", async (endpoint, said) => {
    const s = await setup();
    // Enough failures to outlast the AWS SDK's own retries on the probe.
    s.garage.failNext({ endpoint }, 5, 500, "InternalError");
    const reply = await s.ask("alice", "!bucket create media --quota 1G");
    expect(reply).toMatch(said);
    expect(reply).toMatch(/Rolled back: /);
    expect(s.garage.bucketNames()).toEqual([]);
    expect(s.garage.keyIds()).toEqual([]);
    expect(s.consul.kv("secrets/media/s3_secret_key")).toBeUndefined();
  });

  it("rotates the key: the new one works and is in Consul, the old one is gone", async () => {
    const s = await setup();
    await s.ask("alice", "!bucket create docs");
    const oldKey = s.consul.kv("secrets/docs/s3_access_key")!;
    expect(await s.ask("alice", "!bucket rotate-key docs")).toMatch(
      /has a new key .*the old key .* is deleted/,
    );
    const newKey = s.consul.kv("secrets/docs/s3_access_key")!;
    expect(newKey).not.toBe(oldKey);
    expect(s.garage.keyIds()).toEqual([newKey]);
  });

  it("a Garage without the v2 admin API gets a clear message", async () => {
    const s = await setup();
    const old = await startGarageDouble({ adminToken: "t", apiVersion: "v1-only" });
    cleanups.push(() => old.close());
    const garage = s.app.services.provisioning!.garage!;
    (garage as unknown as { opts: { adminUrl: string } }).opts.adminUrl = old.adminUrl;
    expect(await s.ask("alice", "!bucket create logs")).toMatch(/unsupported Garage version/);
  });
});

/** Asks for a command that needs approval, has bob approve it, and returns what followed in its thread. */
function approver(s: Awaited<ReturnType<typeof setup>>) {
  return async (line: string): Promise<{ request: string; outcome: string }> => {
    expect(await s.ask("alice", line)).toMatch(/Approval needed/);
    const request = s.w.hs
      .timeline(s.w.roomId)
      .filter((e) => /^🔐 \*\*Approval needed/.test(String((e.content as { body?: string }).body)))
      .at(-1)!;
    const reaction = s.w.react("bob", request.event_id, "✅");
    await handledBy(s.app, reaction);
    const outcome = s.w.hs
      .timeline(s.w.roomId)
      .filter(
        (e) =>
          (e.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } })["m.relates_to"]
            ?.event_id === request.event_id,
      )
      .map((e) => String((e.content as { body?: string }).body))
      .join("\n");
    return { request: String((request.content as { body?: string }).body), outcome };
  };
}

describe("!bucket delete", () => {
  it("needs approval; refuses a non-empty bucket unless --purge, which empties it first", async () => {
    const s = await setup();
    await s.ask("alice", "!bucket create archive");
    const s3 = new S3Client({
      endpoint: s.garage.s3Url,
      region: s.garage.region,
      forcePathStyle: true,
      credentials: {
        accessKeyId: s.consul.kv("secrets/archive/s3_access_key")!,
        secretAccessKey: s.consul.kv("secrets/archive/s3_secret_key")!,
      },
    });
    for (let i = 0; i < 3; i++)
      await s3.send(new PutObjectCommand({ Bucket: "archive", Key: `file-${i}`, Body: "x" }));
    s3.destroy();
    const approve = approver(s);
    const key = s.consul.kv("secrets/archive/s3_access_key")!;
    expect((await approve("!bucket delete archive")).outcome).toMatch(
      /Not deleted: `archive` holds 3 objects/,
    );
    expect(s.garage.bucketNames()).toEqual(["archive"]);
    const { request, outcome } = await approve("!bucket delete archive --purge");
    expect(request).toContain(`its key \`${key}\` deleted too`);
    expect(request).toContain("`secrets/archive/s3_access_key`");
    expect(outcome).toMatch(/Deleted bucket `archive` and its 3 objects; its key `GK\w+` deleted/);
    expect(s.garage.bucketNames()).toEqual([]);
    // Its own key went with it (and the temporary purge key too), and so did its secrets.
    expect(s.garage.keyIds()).toEqual([]);
    for (const kind of ["s3_access_key", "s3_secret_key", "s3_bucket"])
      expect(s.consul.kv(`secrets/archive/${kind}`)).toBeUndefined();
  });

  it("keeps a key that serves another bucket, and its secrets", async () => {
    const s = await setup();
    await s.ask("alice", "!bucket create photos");
    const key = s.consul.kv("secrets/photos/s3_access_key")!;
    expect(await s.ask("alice", `!bucket create thumbs --key ${key}`)).toMatch(/Bucket `thumbs` created/);
    const approve = approver(s);
    const { request, outcome } = await approve("!bucket delete thumbs");
    expect(request).toContain(`\`${key}\` kept (it serves other buckets)`);
    expect(outcome).toMatch(/Deleted bucket `thumbs`/);
    expect(s.garage.bucketNames()).toEqual(["photos"]);
    expect(s.garage.keyIds()).toEqual([key]);
    expect(s.consul.kv("secrets/thumbs/s3_access_key")).toBe(key);
    // The last bucket it serves takes it along.
    expect((await approve("!bucket delete photos")).outcome).toContain(`its key \`${key}\` deleted`);
    expect(s.garage.keyIds()).toEqual([]);
    expect(s.consul.kv("secrets/photos/s3_access_key")).toBeUndefined();
  });
});

describe("!bucket create killed with SIGKILL after each step, then restarted", () => {
  it.each(["bucket", "key", "secrets", "permissions", "settings", "probe"])(
    "killed after %s: the restart finishes it",
    async (step) => {
      const w = await startWorld();
      cleanups.push(() => w.close());
      const consul = await startConsulDouble();
      cleanups.push(() => consul.close());
      const garage = await startGarageDouble({ adminToken: "admin-token-for-tests" });
      cleanups.push(() => garage.close());
      const { path, healthUrl } = await writeWorldConfig(w, {
        sections: {
          consul: { address: consul.url },
          garage: {
            admin_url: garage.adminUrl,
            admin_token: "admin-token-for-tests",
            s3_endpoint: garage.s3Url,
            s3_region: garage.region,
          },
        },
      });
      const first = spawnMajordome(path, { MAJORDOME_CRASH_AT: `step:${step}` });
      cleanups.push(() => first.kill());
      await waitHealthy(healthUrl);
      w.say("alice", "!bucket create killed --quota 1G");
      expect(await first.exited).toBeNull();
      const second = spawnMajordome(path);
      cleanups.push(() => second.kill());
      const report = await w.waitFor(
        (e) => /Resumed after a restart/.test(String((e.content as { body?: string }).body)),
        20_000,
      );
      expect(String((report.content as { body: string }).body)).toMatch(
        /Bucket `killed` created.*S3 probe with the new key worked/s,
      );
      expect(garage.bucketNames()).toEqual(["killed"]);
      expect(garage.keyIds()).toEqual([consul.kv("secrets/killed/s3_access_key")]);
    },
  );
});

describe("!bucket create resumed after a kill between Garage's answer and the journal record", () => {
  it("bucket and key made but not recorded: the resume reuses them (no second key); a failure rolls them back", async () => {
    const s = await setup();
    const { garage } = s.app.services.provisioning!;
    const { journal } = s.app.services;
    const begin = (id: string, name: string) =>
      journal.begin({
        id,
        kind: "bucket create",
        args: { name, app: name, website: false, owner: false },
        requester: "@alice:deuxfleurs.fr",
        roomId: s.w.roomId,
      });
    const keysNamed = async (name: string) => ((await garage!.keyByName(name)) === undefined ? 0 : 1); // keyByName throws on several

    await begin("bk-unrecorded", "orphans");
    const made = await garage!.createBucket("orphans");
    await journal.step("bk-unrecorded", "bucket", async () => ({ bucketId: made.id }));
    await garage!.createKey("orphans");
    const text = await createBucket(s.app.services, "bk-unrecorded", {
      name: "orphans",
      app: "orphans",
      website: false,
      owner: false,
    });
    expect(text).toMatch(/Bucket `orphans` created/);
    expect(await keysNamed("orphans")).toBe(1);
    expect(s.consul.kv("secrets/orphans/s3_access_key")).toBe(
      (await garage!.keyByName("orphans"))?.accessKeyId,
    );

    // Someone else's secret in the way: the resume fails and rolls back the unrecorded bucket and key,
    // leaving that secret alone.
    await begin("bk-rolled-back", "strays");
    await garage!.createBucket("strays");
    await garage!.createKey("strays");
    s.consul.putKv("secrets/strays/s3_bucket", "somebody-elses");
    await expect(
      createBucket(s.app.services, "bk-rolled-back", {
        name: "strays",
        app: "strays",
        website: false,
        owner: false,
      }),
    ).rejects.toThrow(/already exists in Consul.*Rolled back: the secrets, key GK[0-9a-f]+, bucket strays/);
    expect(await garage!.bucketByAlias("strays")).toBeUndefined();
    expect(await keysNamed("strays")).toBe(0);
    expect(s.consul.kv("secrets/strays/s3_bucket")).toBe("somebody-elses");
    expect(s.consul.kv("secrets/strays/s3_access_key")).toBeUndefined();
  });
});
