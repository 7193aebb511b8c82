import { code, message, table } from "../src/chat/message.js";
import { APP_NAME, templateStanza, type ConsulSecrets } from "../src/backends/consul-secrets.js";
import { bucketNameProblem, type BucketInfo, type GarageAdmin } from "../src/backends/garage.js";
import type { Services } from "../src/commands/context.js";
import { beginAction, Rollback, undoSecrets } from "./actions.js";
import { defineCommand, type CommandSpec } from "../src/commands/declare.js";
import { integer, name, type ArgType } from "../src/commands/types.js";
import type { ActionRecord } from "../src/state/journal.js";

const bucketName: ArgType<string> = {
  label: "bucket name",
  parse: (raw) => {
    const problem = bucketNameProblem(raw);
    return problem ? { ok: false, expected: `a valid bucket name (${problem})` } : { ok: true, value: raw };
  },
};
const appName = name("app", APP_NAME, "an app name: lowercase letters, digits, - and _");
const keyId = name("key", /^GK[0-9a-f]{24}$/, "a Garage access key ID (GK followed by 24 hex digits)");
const size: ArgType<number> = {
  label: "size",
  parse: (raw) => {
    const match = /^(\d{1,6})([KMGT])$/.exec(raw);
    if (!match) return { ok: false, expected: "a size such as 500M, 10G or 1T" };
    const power = { K: 1, M: 2, G: 3, T: 4 }[match[2] as "K" | "M" | "G" | "T"];
    return { ok: true, value: Number(match[1]) * 1024 ** power };
  },
};

function backends(services: Services): { garage: GarageAdmin; secrets: ConsulSecrets } {
  const { garage, secrets } = services.provisioning ?? {};
  if (!garage) throw new Error("Garage is not configured (no garage section in majordome's config)");
  if (!secrets)
    throw new Error("Consul is not configured: credentials have nowhere to go (no consul section)");
  return { garage, secrets };
}

interface BucketArgs {
  name: string;
  app: string;
  key?: string;
  quota?: number;
  maxObjects?: number;
  website: boolean;
  owner: boolean;
}

function secretKeys(secrets: ConsulSecrets, app: string) {
  return {
    access: secrets.keyFor(app, "s3_access_key"),
    secret: secrets.keyFor(app, "s3_secret_key"),
    bucket: secrets.keyFor(app, "s3_bucket"),
  };
}

/** The order of `bucket create`'s steps: the rollback undoes those done and the one in progress. */
const BUCKET_STEPS = ["bucket", "key", "secrets", "permissions", "settings", "probe"] as const;
type BucketStep = (typeof BUCKET_STEPS)[number];

/**
 * Creates a bucket in journaled steps: bucket (global alias), key (named after the app), credentials to
 * Consul (create-only; the secret is read back from Garage on a resume, never kept in the journal),
 * permissions, quotas and website, then an S3 probe with the new key. Each step first looks for what it
 * makes (a kill between Garage's answer and the journal's record leaves it made but not recorded): the
 * bucket by its alias, the key by its name, the secrets by their value; the pre-check refused all three
 * when the action began, so what is found is this action's. A failure rolls back what this action made,
 * the step in progress included.
 */
export async function createBucket(services: Services, actionId: string, args: BucketArgs): Promise<string> {
  const { garage, secrets } = backends(services);
  const { journal } = services;
  const keys = secretKeys(secrets, args.app);
  let current: BucketStep = "bucket";
  try {
    const { bucketId } = await journal.step(actionId, "bucket", async () => ({
      bucketId: ((await garage.bucketByAlias(args.name)) ?? (await garage.createBucket(args.name))).id,
    }));
    current = "key";
    const { accessKeyId } = await journal.step(actionId, "key", async () => {
      if (args.key) return { accessKeyId: args.key, existing: true };
      const found = await garage.keyByName(args.app);
      return { accessKeyId: (found ?? (await garage.createKey(args.app))).accessKeyId, existing: false };
    });
    const secret = (await garage.keyInfo(accessKeyId, { showSecretKey: true })).secretAccessKey;
    if (!secret) throw new Error(`Garage did not give the secret of key ${accessKeyId}`);
    current = "secrets";
    await journal.step(actionId, "secrets", async () => {
      for (const [key, value] of [
        [keys.access, accessKeyId],
        [keys.bucket, args.name],
        [keys.secret, secret],
      ] as const) {
        if ((await secrets.read(key)) === value) continue;
        if (await secrets.createOnly(key, value)) continue;
        if ((await secrets.read(key)) === value) continue;
        throw new Error(`${key} already exists in Consul; it is not overwritten`);
      }
    });
    current = "permissions";
    await journal.step(actionId, "permissions", () =>
      garage
        .allowBucketKey(bucketId, accessKeyId, { read: true, write: true, owner: args.owner })
        .then(() => undefined),
    );
    current = "settings";
    await journal.step(actionId, "settings", async () => {
      if (args.quota !== undefined || args.maxObjects !== undefined || args.website) {
        await garage.updateBucket(bucketId, {
          // Garage replaces both quotas at once: always send both.
          quotas: { maxSize: args.quota ?? null, maxObjects: args.maxObjects ?? null },
          ...(args.website
            ? { websiteAccess: { enabled: true, indexDocument: "index.html", errorDocument: "error.html" } }
            : {}),
        });
      }
    });
    current = "probe";
    await journal.step(actionId, "probe", () =>
      garage.probe(args.name, { accessKeyId, secretAccessKey: secret }),
    );
    await journal.finish(actionId, "succeeded");
    return (
      `✅ Bucket ${code(args.name)} created; key ${code(accessKeyId)} may read and write${args.owner ? " and own it" : ""}` +
      `${args.quota !== undefined ? `, quota ${args.quota} bytes` : ""}${args.maxObjects !== undefined ? `, at most ${args.maxObjects} objects` : ""}${args.website ? ", website on" : ""}. ` +
      `An S3 probe with the new key worked.\n\nCredentials are in Consul: ${code(keys.access)}, ${code(keys.secret)}. A job reads them with:\n\n` +
      "```hcl\n" +
      templateStanza(secrets, args.app, ["s3_access_key", "s3_secret_key", "s3_bucket"]) +
      "\n```"
    );
  } catch (error) {
    const undone = await rollBack(services, args, await journal.get(actionId), current);
    await journal.finish(actionId, "failed", (error as Error).message);
    throw new Error(`${(error as Error).message}. ${undone}`, { cause: error });
  }
}

/**
 * Undoes, newest first, what this action made: the steps the journal records and the one in progress
 * (whose effect may have landed without its record), each found by its recorded ID or else looked up.
 */
async function rollBack(
  services: Services,
  args: BucketArgs,
  record: ActionRecord | undefined,
  current: BucketStep,
): Promise<string> {
  const { garage, secrets } = backends(services);
  const result = (step: string) =>
    record?.steps.find((s) => s.name === step)?.result as Record<string, unknown> | undefined;
  const done = new Set<string>(record?.steps.map((s) => s.name));
  done.add(current);
  const reached = (step: BucketStep) =>
    BUCKET_STEPS.slice(BUCKET_STEPS.indexOf(step)).some((later) => done.has(later));
  const rollback = new Rollback();

  // The key this action made (never one given with --key): as recorded, or else by its name.
  let keyId: string | undefined;
  if (reached("key") && !args.key) {
    const recorded = result("key");
    if (recorded) keyId = recorded.existing ? undefined : String(recorded.accessKeyId);
    else keyId = (await garage.keyByName(args.app).catch(() => undefined))?.accessKeyId;
  }
  if (reached("secrets")) {
    const keys = secretKeys(secrets, args.app);
    const ours: Array<[string, string | undefined]> = [
      [keys.access, keyId ?? args.key],
      [keys.bucket, args.name],
      // Absent when the action began (the pre-check): present now, it is this action's.
      [keys.secret, undefined],
    ];
    await undoSecrets(rollback, secrets, ours);
  }
  if (keyId) await rollback.undo(`key ${keyId}`, () => garage.deleteKey(keyId));
  const bucketId =
    result("bucket")?.bucketId ?? (await garage.bucketByAlias(args.name).catch(() => undefined))?.id;
  if (bucketId) await rollback.undo(`bucket ${args.name}`, () => garage.deleteBucket(String(bucketId)));
  return rollback.summary();
}

const create = defineCommand<{
  name: string;
  app?: string;
  key?: string;
  quota?: number;
  "max-objects"?: number;
  website?: boolean;
  owner?: boolean;
}>({
  name: "bucket create",
  summary: "Create a Garage bucket and its key; credentials go to Consul KV; proven with an S3 probe",
  args: [{ name: "name", type: bucketName }],
  flags: {
    app: {
      summary:
        "the app whose secrets/<app>/ folder gets the credentials, and the key's name (default: the bucket name)",
      type: appName,
    },
    key: { summary: "use this existing key instead of creating one", type: keyId },
    quota: { summary: "the bucket's maximum size, e.g. 10G", type: size },
    "max-objects": {
      summary: "the bucket's maximum number of objects",
      type: integer("count", 1, 1_000_000_000),
    },
    website: { summary: "serve the bucket as a website" },
    owner: { summary: "also give the key owner rights" },
  },
  async run(ctx, flags) {
    const { garage, secrets } = backends(ctx.services);
    await garage.checkVersion();
    const args: BucketArgs = {
      name: flags.name,
      app: appOf(flags.name, flags.app),
      website: flags.website ?? false,
      owner: flags.owner ?? false,
      ...(flags.key ? { key: flags.key } : {}),
      ...(flags.quota !== undefined ? { quota: flags.quota } : {}),
      ...(flags["max-objects"] !== undefined ? { maxObjects: flags["max-objects"] } : {}),
    };
    if (!APP_NAME.test(args.app))
      return message(`${code(args.app)} cannot be an app name; give one with ${code("--app")}.`);
    const keys = secretKeys(secrets, args.app);
    const [existing, secretExists] = await Promise.all([
      garage.bucketByAlias(args.name),
      secrets.exists(keys.secret),
    ]);
    if (existing) {
      return message(
        `Bucket ${code(args.name)} already exists (${existing.objects} objects); its secret ${secretExists ? `is at ${code(keys.secret)}` : "is **not** in Consul"}. Nothing was changed.`,
      );
    }
    if (secretExists)
      return message(
        `⚠️ Not created: ${code(keys.secret)} already exists in Consul without the bucket. Nothing was changed.`,
      );
    if (!args.key && (await garage.keyByName(args.app))) {
      return message(
        `⚠️ Not created: a Garage key named ${code(args.app)} already exists; use it with ${code("--key")} or choose another ${code("--app")}.`,
      );
    }
    const actionId = await beginAction(ctx, "bucket create", { ...args });
    if (!actionId) return message("This request was already handled.");
    return message(await createBucket(ctx.services, actionId, args));
  },
});

const list = defineCommand({
  name: "bucket list",
  summary: "Garage buckets",
  async run(ctx) {
    const { garage } = backends(ctx.services);
    const buckets = await garage.listBuckets();
    if (buckets.length === 0) return message("No buckets.");
    return message(
      table(
        ["bucket", "id"],
        buckets.map((b) => [b.globalAliases.map((a) => code(a)).join(", ") || "—", code(b.id.slice(0, 16))]),
      ),
    );
  },
});

const info = defineCommand<{ name: string }>({
  name: "bucket info",
  summary: "One bucket: size, objects, quotas, keys",
  args: [{ name: "name", type: bucketName }],
  async run(ctx, { name: bucket }) {
    const { garage } = backends(ctx.services);
    const found = await garage.bucketByAlias(bucket);
    if (!found) return message(`No bucket ${code(bucket)}.`);
    const quotas = `${found.quotas.maxSize ?? "no"} size quota, ${found.quotas.maxObjects ?? "no"} object quota`;
    const keys = found.keys.map(
      (k) =>
        `${code(k.accessKeyId)} (${k.name}: ${["read", "write", "owner"].filter((p) => k.permissions[p as "read"]).join("/")})`,
    );
    return message(
      `**${code(bucket)}**: ${found.objects} objects, ${found.bytes} bytes; ${quotas}; website ${found.websiteAccess ? "on" : "off"}.\nKeys: ${keys.join(", ") || "none"}`,
    );
  },
});

const rotateKey = defineCommand<{ name: string; app?: string }>({
  name: "bucket rotate-key",
  summary: "Give a bucket a new key (new credentials in Consul, then the old key is removed)",
  args: [{ name: "name", type: bucketName }],
  flags: {
    app: { summary: "the app whose secrets hold the credentials (default: the bucket name)", type: appName },
  },
  async run(ctx, { name: bucket, app }) {
    const { garage, secrets } = backends(ctx.services);
    const found = await garage.bucketByAlias(bucket);
    if (!found) return message(`No bucket ${code(bucket)}.`);
    const keys = secretKeys(secrets, appOf(bucket, app));
    const oldKey = await secrets.read(keys.access);
    if (!oldKey) return message(`${code(keys.access)} is not in Consul; nothing was changed.`);
    const old = found.keys.find((k) => k.accessKeyId === oldKey);
    const fresh = await garage.createKey(`${old?.name ?? bucket}-${ctx.services.clock.now()}`);
    await garage.allowBucketKey(
      found.id,
      fresh.accessKeyId,
      old?.permissions ?? { read: true, write: true, owner: false },
    );
    await garage.probe(bucket, fresh);
    await secrets.replace(keys.secret, fresh.secretAccessKey);
    await secrets.replace(keys.access, fresh.accessKeyId);
    await garage.deleteKey(oldKey);
    return message(
      `🔑 Bucket ${code(bucket)} has a new key ${code(fresh.accessKeyId)} (probed); ${code(keys.access)} and ${code(keys.secret)} updated; the old key ${code(oldKey)} is deleted. Restart the app's job so its template re-renders.`,
    );
  },
});

/**
 * What goes with a bucket: its keys that serve no other bucket, and the app's S3 secrets in Consul when
 * they hold one of those keys. A key that serves another bucket stays, and so do its secrets.
 */
async function bucketLeftovers(
  garage: GarageAdmin,
  secrets: ConsulSecrets,
  bucket: BucketInfo,
  app: string,
): Promise<{ keys: string[]; keptKeys: string[]; secrets: string[] }> {
  const infos = await Promise.all(bucket.keys.map((k) => garage.keyInfo(k.accessKeyId)));
  const own = infos
    .filter((i) => (i.buckets ?? []).every((b) => b.id === bucket.id))
    .map((i) => i.accessKeyId);
  const kept = bucket.keys.map((k) => k.accessKeyId).filter((id) => !own.includes(id));
  const keys = secretKeys(secrets, app);
  const stored = await secrets.read(keys.access);
  const ours = stored !== undefined && own.includes(stored);
  return { keys: own, keptKeys: kept, secrets: ours ? [keys.access, keys.secret, keys.bucket] : [] };
}

const remove = defineCommand<{ name: string; purge?: boolean; app?: string }>({
  name: "bucket delete",
  summary: "Delete a bucket with its own key and secrets (refused when not empty, unless --purge)",
  args: [{ name: "name", type: bucketName }],
  flags: {
    purge: { summary: "delete its objects too", policy: "bucket delete --purge" },
    app: { summary: "the app whose secrets hold its credentials (default: the bucket name)", type: appName },
  },
  async plan(ctx, { name: bucket, purge, app }) {
    const { garage, secrets } = backends(ctx.services);
    const found = await garage.bucketByAlias(bucket);
    if (!found) throw new Error(`no bucket ${code(bucket)}`);
    const leftovers = await bucketLeftovers(garage, secrets, found, appOf(bucket, app));
    return {
      summary:
        `Delete bucket ${code(bucket)} (${found.objects} objects, ${found.bytes} bytes)${purge ? ", with every object in it" : ""}` +
        describeLeftovers(leftovers, "will") +
        ". This cannot be undone.",
      facts: { bucket, id: found.id, objects: found.objects, purge: purge ?? false, ...leftovers },
    };
  },
  async run(ctx, { name: bucket, purge, app }) {
    const { garage, secrets } = backends(ctx.services);
    const found = await garage.bucketByAlias(bucket);
    if (!found) return message(`No bucket ${code(bucket)}; nothing was done.`);
    if (found.objects > 0 && !purge)
      return message(
        `⚠️ Not deleted: ${code(bucket)} holds ${found.objects} objects. Add ${code("--purge")} to delete them too.`,
      );
    const leftovers = await bucketLeftovers(garage, secrets, found, appOf(bucket, app));
    const purged = found.objects > 0 ? await garage.emptyBucket(found.id, bucket) : 0;
    // Secrets, then keys, then the bucket: interrupted, a new `!bucket delete` finds what is left.
    for (const key of leftovers.secrets) await secrets.remove(key);
    for (const key of leftovers.keys) await garage.deleteKey(key);
    await garage.deleteBucket(found.id);
    return message(
      `🗑️ Deleted bucket ${code(bucket)}${purged ? ` and its ${purged} objects` : ""}` +
        describeLeftovers(leftovers, "was") +
        ".",
    );
  },
});

const appOf = (bucket: string, app: string | undefined): string => app ?? bucket.replace(/\./g, "-");

function describeLeftovers(
  leftovers: { keys: string[]; keptKeys: string[]; secrets: string[] },
  tense: "will" | "was",
): string {
  const gone = tense === "will" ? "deleted too" : "deleted";
  const parts = [
    ...(leftovers.keys.length ? [`its key ${leftovers.keys.map(code).join(", ")} ${gone}`] : []),
    ...(leftovers.secrets.length ? [`${leftovers.secrets.map(code).join(", ")} removed from Consul`] : []),
    ...(leftovers.keptKeys.length
      ? [`${leftovers.keptKeys.map(code).join(", ")} kept (it serves other buckets), with its secrets`]
      : []),
  ];
  return parts.length ? `; ${parts.join("; ")}` : "";
}

export async function resumeBucketCreation(services: Services, action: ActionRecord): Promise<string> {
  return createBucket(services, action.id, action.args as unknown as BucketArgs);
}

export const bucketCommands: CommandSpec[] = [create, list, info, rotateKey, remove];
