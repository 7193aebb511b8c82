import { validate as validateCron } from "node-cron";
import { z } from "zod";
import { SIGNAL_KINDS } from "../alerts/signal.js";
import { duration } from "./duration.js";

const url = z.url({ message: "expected a URL such as https://host:port" });
const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, "expected host:port, such as 127.0.0.1:9180");
const tls = z
  .strictObject({
    ca_file: z.string().optional(),
    cert_file: z.string().optional(),
    key_file: z.string().optional(),
    insecure_skip_verify: z.boolean().default(false),
  })
  .optional();

const matrix = z.strictObject({
  homeserver_url: url,
  access_token: z.string().min(1, "the bot's access token is required (access_token or access_token_file)"),
  user_domain: z.string().min(1),
  command_rooms: z.array(z.string().min(1)).min(1, "at least one command room is required"),
  alert_room: z.string().min(1).optional(),
  command_prefix: z.string().min(1).max(3).default("!"),
  encryption: z.boolean().default(false),
  crypto_store: z.string().default("./data/crypto"),
  /** How many messages may be on their way to the homeserver at once. */
  send_concurrency: z.number().int().min(1).max(32).default(4),
});

const ldap = z.strictObject({
  url: z.string().regex(/^ldaps?:\/\//, "expected an ldap:// or ldaps:// URL"),
  bind_dn: z.string().min(1),
  bind_password: z.string().min(1, "bind_password or bind_password_file is required"),
  user_base: z.string().default("ou=users,dc=deuxfleurs,dc=fr"),
  group_base: z.string().default("ou=groups,dc=deuxfleurs,dc=fr"),
  user_name_attribute: z.string().default("cn"),
  group_name_attribute: z.string().default("cn"),
  member_of_attribute: z.string().default("memberOf"),
  search_groups_by_member: z.boolean().default(false),
  cache_ttl: duration.prefault(60_000),
  timeout: duration.prefault(5_000),
  tls,
});

const directory = z
  .strictObject({
    kind: z.enum(["ldap", "yaml"]).default("ldap"),
    yaml_path: z.string().optional(),
    /** Matrix IDs that map to a directory user whatever their server (exceptions to the domain rule). */
    explicit: z.record(z.string(), z.string()).default({}),
  })
  .prefault({});

const nomad = z.strictObject({
  address: url,
  token: z.string().optional(),
  namespace: z.string().default("default"),
  region: z.string().optional(),
  tls,
  /** A directory of HCL job files (a checkout of the infrastructure repository). */
  jobs_dir: z.string().optional(),
  /** Job name → file (relative to jobs_dir), where the convention <name>.hcl / <name>.nomad(.hcl) does not fit. */
  jobs: z.record(z.string(), z.string()).default({}),
  /** Run `git pull --ff-only` in jobs_dir before reading a job file. */
  git_pull: z.boolean().default(false),
});

const consul = z.strictObject({
  address: url,
  token: z.string().optional(),
  datacenter: z.string().optional(),
  tls,
});

const postgres = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(5432),
  user: z.string().min(1),
  password: z.string().min(1),
  database: z.string().default("postgres"),
  ssl: z.boolean().default(false),
});

const garage = z.strictObject({
  admin_url: url,
  admin_token: z.string().min(1),
  s3_endpoint: url,
  s3_region: z.string().default("garage"),
});

/** Where credentials go in Consul KV, as the collective's Nomad templates read them. */
const secrets = z
  .strictObject({
    prefix: z
      .string()
      .regex(/^([a-z0-9_-]+\/)+$/, "expected a key prefix ending with /, e.g. secrets/")
      .default("secrets/"),
    keys: z
      .strictObject({
        db_user: z.string().default("{app}/db_user"),
        db_pass: z.string().default("{app}/db_pass"),
        db_name: z.string().default("{app}/db_name"),
        s3_access_key: z.string().default("{app}/s3_access_key"),
        s3_secret_key: z.string().default("{app}/s3_secret_key"),
        s3_bucket: z.string().default("{app}/s3_bucket"),
      })
      .prefault({}),
  })
  .prefault({});

const consulKey = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/;

/** One active instance: a Consul session lock (durations bounded as Consul bounds them). */
const leader = z
  .strictObject({
    /** Default: on with the consul backend, off with the file backend. */
    enabled: z.boolean().optional(),
    lock_key: z
      .string()
      .regex(consulKey, "expected a Consul key such as majordome/leader")
      .default("majordome/leader"),
    session_ttl: duration
      .refine((ms) => ms >= 10_000 && ms <= 24 * 3600_000, "Consul accepts a session TTL from 10s to 24h")
      .prefault("15s"),
    lock_delay: duration.refine((ms) => ms <= 60_000, "Consul caps the lock delay at 60s").prefault("15s"),
  })
  .prefault({});

const state = z
  .strictObject({
    backend: z.enum(["file", "consul"]).default("file"),
    path: z.string().default("./data/state"),
    consul_prefix: z
      .string()
      .regex(
        /^([A-Za-z0-9_-][A-Za-z0-9_.-]*\/)+$/,
        "expected a Consul key prefix ending with /, e.g. majordome/state/",
      )
      .default("majordome/state/"),
    /** Largest state value written to Consul; a guarded write's transaction (base64) must stay under 512 KB. */
    consul_max_value_bytes: z
      .number()
      .int()
      .min(16 * 1024)
      .max(360 * 1024)
      .default(256 * 1024),
    audit_max_age: duration.prefault("90d"),
    fsync: z.boolean().default(true),
    processed_events_kept: z.number().int().min(100).default(2000),
    leader,
  })
  .transform((s) => ({ ...s, leader: { ...s.leader, enabled: s.leader.enabled ?? s.backend === "consul" } }))
  .prefault({});

const http = z.strictObject({ listen: hostPort.default("127.0.0.1:9180") }).prefault({});

/** Every duration majordome waits on, with production defaults. */
const timings = z
  .strictObject({
    command_timeout: duration.prefault("5m"),
    approval_expiry: duration.prefault("15m"),
    sync_timeout: duration.prefault("30s"),
    outbox_retry_min: duration.prefault("500ms"),
    outbox_retry_max: duration.prefault("60s"),
    rate_limit_wait_max: duration.prefault("60s"),
    health_sync_stale: duration.prefault("2m"),
    shutdown_grace: duration.prefault("25s"),
    nomad_request_timeout: duration.prefault("30s"),
    deploy_timeout: duration.prefault("15m"),
    backend_request_timeout: duration.prefault("30s"),
  })
  .prefault({});

const cronExpression = z
  .string()
  .refine((value) => validateCron(value), { message: 'expected a cron expression such as "0 8 * * *"' });
const severity = z.enum(["critical", "warning", "info"]);
const rule = z.strictObject({
  enabled: z.boolean().optional(),
  severity: severity.optional(),
  /** Flap damping: how long a change must hold before anyone is told. */
  hold: duration.optional(),
});

/** Incidents from Nomad, Consul health and Stolon, posted to matrix.alert_room. */
const alerts = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Members of this directory group are mentioned when a critical incident is repeated. */
    on_call_group: z.string().optional(),
    group_wait: duration.prefault("30s"),
    group_interval: duration.prefault("5m"),
    repeat_interval: duration.prefault("4h"),
    edit_interval: duration.prefault("2s"),
    reaction_silence: duration.prefault("1h"),
    history: duration.prefault("7d"),
    /** node-cron expressions: when due reminders are looked for, and when the daily digest goes out. */
    reminder_schedule: cronExpression.default("* * * * *"),
    digest_schedule: cronExpression.default("0 8 * * *"),
    rules: z.partialRecord(z.enum(SIGNAL_KINDS), rule).default({}),
    sources: z
      .strictObject({
        nomad: z
          .strictObject({
            enabled: z.boolean().default(true),
            /** No line (heartbeats count) for this long: the event stream is dead, reconnect. */
            watchdog: duration.prefault("90s"),
            /** alloc-restart-loop: more than this many restarts within the window. */
            restart_loop_count: z.number().int().min(1).default(3),
            restart_loop_window: duration.prefault("10m"),
          })
          .prefault({}),
        consul: z
          .strictObject({
            enabled: z.boolean().default(true),
            /** What a check in warning does: nothing (degraded but serving), or alert like critical. */
            warning: z.enum(["ignore", "alert"]).default("ignore"),
          })
          .prefault({}),
        stolon: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
        /** majordome's blind spots: Nomad, Consul or the directory unreachable for longer than threshold. */
        reachability: z
          .strictObject({
            enabled: z.boolean().default(true),
            interval: duration.prefault("15s"),
            threshold: duration.prefault("60s"),
          })
          .prefault({}),
      })
      .prefault({}),
  })
  .prefault({});

/** Stolon PostgreSQL clusters whose state is in Consul (needs the consul section). */
const stolonClusterName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "expected a cluster name: letters, digits, ., - and _");
const stolon = z
  .strictObject({
    /** Stolon's --store-prefix. */
    prefix: z
      .string()
      .regex(
        /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/,
        "expected a key prefix such as stolon/cluster",
      )
      .default("stolon/cluster"),
    /** Stolon's --cluster-name of each cluster majordome may act on. */
    clusters: z.array(stolonClusterName).min(1, "name at least one cluster"),
    /** Used when a command names no --cluster (default: the first). */
    default_cluster: stolonClusterName.optional(),
    /** A sentinel that has not rewritten the cluster data for this long is taken as not at work. */
    rewrite_window: duration.prefault("12s"),
    /** How long `!db failover` follows the cluster data for a new master. */
    failover_timeout: duration.prefault("2m"),
    /** The alert source: a keeper whose info key is not updated for this long is gone. */
    keeper_gone_after: duration.prefault("30s"),
  })
  .refine((s) => !s.default_cluster || s.clusters.includes(s.default_cluster), {
    message: "default_cluster must be one of clusters",
    path: ["default_cluster"],
  });

const log = z
  .strictObject({
    level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    matrix,
    directory,
    ldap: ldap.optional(),
    nomad: nomad.optional(),
    consul: consul.optional(),
    postgres: postgres.optional(),
    garage: garage.optional(),
    stolon: stolon.optional(),
    secrets,
    state,
    http,
    timings,
    alerts,
    policies_dir: z.string().default("./policies"),
    log,
  })
  .refine((c) => !c.stolon || c.consul, {
    message: "the stolon section needs a consul section (Stolon keeps its state in Consul)",
    path: ["stolon"],
  })
  .refine((c) => (c.state.backend !== "consul" && !c.state.leader.enabled) || c.consul, {
    message: "the consul state backend and the leader lock need a consul section",
    path: ["state"],
  });

export type Config = z.infer<typeof configSchema>;
export type Timings = Config["timings"];
