/**
 * The jobspec blocks the double understands, as HCL name → API field. Mirrors jobspec2's decoding of
 * the api.Job struct (hcl tags in api/jobs.go, api/tasks.go, api/services.go, api/resources.go).
 */

export type Kind = "string" | "int" | "bool" | "duration" | "strings" | "stringMap" | "stringListMap" | "any";

export interface Attr {
  to: string;
  kind: Kind;
}

export type Shape = "single" | "list" | "labelledList" | "labelledMap";

export interface Block {
  to: string;
  schema: Schema;
  shape: Shape;
  /** Field the block label goes to (labelled blocks). */
  label: string;
}

export interface Schema {
  attrs: Record<string, Attr>;
  blocks: Record<string, Block>;
  /** Special handling after the generic mapping (ports, constraint operators). */
  post?: "network" | "constraint" | "logs";
}

const a = (to: string, kind: Kind): Attr => ({ to, kind });
const b = (to: string, schema: Schema, shape: Shape = "single", label = "Name"): Block => ({
  to,
  schema,
  shape,
  label,
});
const schema = (
  attrs: Record<string, Attr>,
  blocks: Record<string, Block> = {},
  post?: Schema["post"],
): Schema => (post === undefined ? { attrs, blocks } : { attrs, blocks, post });

const constraint = schema(
  {
    attribute: a("LTarget", "string"),
    value: a("RTarget", "string"),
    operator: a("Operand", "string"),
    ...Object.fromEntries(
      [
        "distinct_hosts",
        "distinct_property",
        "regexp",
        "version",
        "semver",
        "set_contains",
        "set_contains_any",
        "set_contains_all",
      ].map((op) => [op, a(`op:${op}`, "string")]),
    ),
  },
  {},
  "constraint",
);

const affinity = schema({
  attribute: a("LTarget", "string"),
  value: a("RTarget", "string"),
  operator: a("Operand", "string"),
  weight: a("Weight", "int"),
});

const port = schema({
  static: a("Value", "int"),
  to: a("To", "int"),
  host_network: a("HostNetwork", "string"),
});

const network = schema(
  {
    mode: a("Mode", "string"),
    hostname: a("Hostname", "string"),
    mbits: a("MBits", "int"),
  },
  {
    port: b("Ports", port, "labelledList", "Label"),
    dns: b(
      "DNS",
      schema({
        servers: a("Servers", "strings"),
        searches: a("Searches", "strings"),
        options: a("Options", "strings"),
      }),
    ),
  },
  "network",
);

const update = schema({
  max_parallel: a("MaxParallel", "int"),
  health_check: a("HealthCheck", "string"),
  min_healthy_time: a("MinHealthyTime", "duration"),
  healthy_deadline: a("HealthyDeadline", "duration"),
  progress_deadline: a("ProgressDeadline", "duration"),
  auto_revert: a("AutoRevert", "bool"),
  auto_promote: a("AutoPromote", "bool"),
  canary: a("Canary", "int"),
  stagger: a("Stagger", "duration"),
});

const restart = schema({
  attempts: a("Attempts", "int"),
  interval: a("Interval", "duration"),
  delay: a("Delay", "duration"),
  mode: a("Mode", "string"),
  render_templates: a("RenderTemplates", "bool"),
});

const reschedule = schema({
  attempts: a("Attempts", "int"),
  interval: a("Interval", "duration"),
  delay: a("Delay", "duration"),
  delay_function: a("DelayFunction", "string"),
  max_delay: a("MaxDelay", "duration"),
  unlimited: a("Unlimited", "bool"),
});

const migrate = schema({
  max_parallel: a("MaxParallel", "int"),
  health_check: a("HealthCheck", "string"),
  min_healthy_time: a("MinHealthyTime", "duration"),
  healthy_deadline: a("HealthyDeadline", "duration"),
});

const check = schema(
  {
    name: a("Name", "string"),
    type: a("Type", "string"),
    command: a("Command", "string"),
    args: a("Args", "strings"),
    path: a("Path", "string"),
    protocol: a("Protocol", "string"),
    port: a("PortLabel", "string"),
    expose: a("Expose", "bool"),
    address_mode: a("AddressMode", "string"),
    interval: a("Interval", "duration"),
    timeout: a("Timeout", "duration"),
    initial_status: a("InitialStatus", "string"),
    tls_server_name: a("TLSServerName", "string"),
    tls_skip_verify: a("TLSSkipVerify", "bool"),
    method: a("Method", "string"),
    header: a("Header", "stringListMap"),
    grpc_service: a("GRPCService", "string"),
    grpc_use_tls: a("GRPCUseTLS", "bool"),
    task: a("TaskName", "string"),
    success_before_passing: a("SuccessBeforePassing", "int"),
    failures_before_critical: a("FailuresBeforeCritical", "int"),
    failures_before_warning: a("FailuresBeforeWarning", "int"),
    body: a("Body", "string"),
    on_update: a("OnUpdate", "string"),
  },
  {
    check_restart: b(
      "CheckRestart",
      schema({
        limit: a("Limit", "int"),
        grace: a("Grace", "duration"),
        ignore_warnings: a("IgnoreWarnings", "bool"),
      }),
    ),
  },
);

const service = schema(
  {
    name: a("Name", "string"),
    port: a("PortLabel", "string"),
    tags: a("Tags", "strings"),
    canary_tags: a("CanaryTags", "strings"),
    address_mode: a("AddressMode", "string"),
    address: a("Address", "string"),
    provider: a("Provider", "string"),
    task: a("TaskName", "string"),
    on_update: a("OnUpdate", "string"),
    enable_tag_override: a("EnableTagOverride", "bool"),
    meta: a("Meta", "stringMap"),
    canary_meta: a("CanaryMeta", "stringMap"),
    tagged_addresses: a("TaggedAddresses", "stringMap"),
    cluster: a("Cluster", "string"),
  },
  { check: b("Checks", check, "list") },
);

const template = schema({
  data: a("EmbeddedTmpl", "string"),
  source: a("SourcePath", "string"),
  destination: a("DestPath", "string"),
  change_mode: a("ChangeMode", "string"),
  change_signal: a("ChangeSignal", "string"),
  splay: a("Splay", "duration"),
  perms: a("Perms", "string"),
  uid: a("Uid", "int"),
  gid: a("Gid", "int"),
  left_delimiter: a("LeftDelim", "string"),
  right_delimiter: a("RightDelim", "string"),
  env: a("Envvars", "bool"),
  error_on_missing_key: a("ErrMissingKey", "bool"),
  once: a("Once", "bool"),
  vault_grace: a("VaultGrace", "duration"),
});

const resources = schema(
  {
    cpu: a("CPU", "int"),
    cores: a("Cores", "int"),
    memory: a("MemoryMB", "int"),
    memory_max: a("MemoryMaxMB", "int"),
    disk: a("DiskMB", "int"),
    iops: a("IOPS", "int"),
  },
  { network: b("Networks", network, "list") },
);

const artifact = schema({
  source: a("GetterSource", "string"),
  destination: a("RelativeDest", "string"),
  mode: a("GetterMode", "string"),
  options: a("GetterOptions", "stringMap"),
  headers: a("GetterHeaders", "stringMap"),
});

const vault = schema({
  policies: a("Policies", "strings"),
  role: a("Role", "string"),
  env: a("Env", "bool"),
  disable_file: a("DisableFile", "bool"),
  change_mode: a("ChangeMode", "string"),
  change_signal: a("ChangeSignal", "string"),
  namespace: a("Namespace", "string"),
  cluster: a("Cluster", "string"),
});

const task = schema(
  {
    driver: a("Driver", "string"),
    user: a("User", "string"),
    kill_timeout: a("KillTimeout", "duration"),
    kill_signal: a("KillSignal", "string"),
    leader: a("Leader", "bool"),
    kind: a("Kind", "string"),
    shutdown_delay: a("ShutdownDelay", "duration"),
    config: a("Config", "any"),
    env: a("Env", "stringMap"),
    meta: a("Meta", "stringMap"),
  },
  {
    resources: b("Resources", resources),
    service: b("Services", service, "list"),
    template: b("Templates", template, "list"),
    artifact: b("Artifacts", artifact, "list"),
    constraint: b("Constraints", constraint, "list"),
    affinity: b("Affinities", affinity, "list"),
    logs: b(
      "LogConfig",
      schema(
        {
          max_files: a("MaxFiles", "int"),
          max_file_size: a("MaxFileSizeMB", "int"),
          enabled: a("Enabled", "bool"),
          disabled: a("Disabled", "bool"),
        },
        {},
        "logs",
      ),
    ),
    lifecycle: b("Lifecycle", schema({ hook: a("Hook", "string"), sidecar: a("Sidecar", "bool") })),
    restart: b("RestartPolicy", restart),
    vault: b("Vault", vault),
    dispatch_payload: b("DispatchPayload", schema({ file: a("File", "string") })),
    volume_mount: b(
      "VolumeMounts",
      schema({
        volume: a("Volume", "string"),
        destination: a("Destination", "string"),
        read_only: a("ReadOnly", "bool"),
        propagation_mode: a("PropagationMode", "string"),
        selinux_label: a("SELinuxLabel", "string"),
      }),
      "list",
    ),
  },
);

const group = schema(
  {
    count: a("Count", "int"),
    shutdown_delay: a("ShutdownDelay", "duration"),
    stop_after_client_disconnect: a("StopAfterClientDisconnect", "duration"),
    max_client_disconnect: a("MaxClientDisconnect", "duration"),
    prevent_reschedule_on_lost: a("PreventRescheduleOnLost", "bool"),
    meta: a("Meta", "stringMap"),
  },
  {
    task: b("Tasks", task, "labelledList"),
    network: b("Networks", network, "list"),
    service: b("Services", service, "list"),
    constraint: b("Constraints", constraint, "list"),
    affinity: b("Affinities", affinity, "list"),
    restart: b("RestartPolicy", restart),
    reschedule: b("ReschedulePolicy", reschedule),
    update: b("Update", update),
    migrate: b("Migrate", migrate),
    ephemeral_disk: b(
      "EphemeralDisk",
      schema({ sticky: a("Sticky", "bool"), migrate: a("Migrate", "bool"), size: a("SizeMB", "int") }),
    ),
    volume: b(
      "Volumes",
      schema({
        type: a("Type", "string"),
        source: a("Source", "string"),
        read_only: a("ReadOnly", "bool"),
        access_mode: a("AccessMode", "string"),
        attachment_mode: a("AttachmentMode", "string"),
        per_alloc: a("PerAlloc", "bool"),
      }),
      "labelledMap",
    ),
    scaling: b(
      "Scaling",
      schema({
        min: a("Min", "int"),
        max: a("Max", "int"),
        enabled: a("Enabled", "bool"),
        policy: a("Policy", "any"),
      }),
    ),
  },
);

export const JOB_SCHEMA = schema(
  {
    name: a("Name", "string"),
    region: a("Region", "string"),
    namespace: a("Namespace", "string"),
    type: a("Type", "string"),
    priority: a("Priority", "int"),
    datacenters: a("Datacenters", "strings"),
    node_pool: a("NodePool", "string"),
    all_at_once: a("AllAtOnce", "bool"),
    consul_token: a("ConsulToken", "string"),
    vault_token: a("VaultToken", "string"),
    meta: a("Meta", "stringMap"),
  },
  {
    group: b("TaskGroups", group, "labelledList"),
    constraint: b("Constraints", constraint, "list"),
    affinity: b("Affinities", affinity, "list"),
    update: b("Update", update),
    reschedule: b("Reschedule", reschedule),
    migrate: b("Migrate", migrate),
    periodic: b(
      "Periodic",
      schema({
        cron: a("Spec", "string"),
        crons: a("Specs", "strings"),
        prohibit_overlap: a("ProhibitOverlap", "bool"),
        time_zone: a("TimeZone", "string"),
        enabled: a("Enabled", "bool"),
      }),
    ),
    parameterized: b(
      "ParameterizedJob",
      schema({
        payload: a("Payload", "string"),
        meta_required: a("MetaRequired", "strings"),
        meta_optional: a("MetaOptional", "strings"),
      }),
    ),
  },
);

/** Blocks real Nomad accepts that the double does not model: refused with a diagnostic naming them. */
export const UNSUPPORTED_BLOCKS = [
  "spread",
  "connect",
  "device",
  "dynamic",
  "consul",
  "identity",
  "csi_plugin",
  "action",
  "disconnect",
  "change_script",
  "wait",
  "multiregion",
  "ui",
  "numa",
  "schedule",
  "secret",
  "locals",
];
