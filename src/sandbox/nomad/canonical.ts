import {
  DEFAULT_CPU,
  DEFAULT_KILL_TIMEOUT,
  DEFAULT_MEMORY_MB,
  DEFAULT_PRIORITY,
  defaultEphemeralDisk,
  defaultLogConfig,
  defaultMigrate,
  defaultReschedule,
  defaultRestart,
  defaultUpdate,
} from "./defaults.js";
import { NS } from "./duration.js";
import { Fields } from "./read.js";
import type {
  Affinity,
  Artifact,
  Constraint,
  Job,
  MigrateStrategy,
  NetworkResource,
  ParameterizedJobConfig,
  PeriodicConfig,
  Port,
  ReschedulePolicy,
  Resources,
  RestartPolicy,
  ScalingPolicy,
  Service,
  ServiceCheck,
  Task,
  TaskGroup,
  Template,
  UpdateStrategy,
} from "./types.js";

/**
 * An API Job (as clients send it to /v1/jobs or /v1/job/:id/plan, or as /v1/jobs/parse produces it)
 * read with the defaults of api.Job.Canonicalize: unset pointers become defaults, the job's update,
 * reschedule and migrate blocks are merged into each group, the group's restart into each task.
 */
export function canonicalizeJob(input: unknown): Job {
  const f = Fields.of(input, "Job");
  const id = f.str("ID");
  const type = f.str("Type", "service");
  const jobUpdate = partialUpdate(f.child("Update"));
  const job: Job = {
    Stop: f.bool("Stop"),
    Region: f.str("Region", "global"),
    Namespace: f.str("Namespace", "default"),
    ID: id,
    ParentID: f.str("ParentID"),
    Name: f.str("Name", id),
    Type: type,
    Priority: f.int("Priority", DEFAULT_PRIORITY),
    AllAtOnce: f.bool("AllAtOnce"),
    Datacenters: f.strings("Datacenters"),
    NodePool: f.str("NodePool", "default"),
    Constraints: constraints(f),
    Affinities: affinities(f),
    Spreads: null,
    TaskGroups: null,
    Update: jobUpdate === undefined ? (type === "service" ? defaultUpdate() : null) : fillUpdate(jobUpdate),
    Multiregion: null,
    Periodic: periodic(f.child("Periodic")),
    ParameterizedJob: parameterized(f.child("ParameterizedJob")),
    Dispatched: f.bool("Dispatched"),
    DispatchIdempotencyToken: f.str("DispatchIdempotencyToken"),
    Payload: null,
    Meta: f.stringMap("Meta"),
    ConsulToken: f.str("ConsulToken"),
    ConsulNamespace: f.str("ConsulNamespace"),
    VaultToken: f.str("VaultToken"),
    VaultNamespace: f.str("VaultNamespace"),
    NomadTokenID: f.str("NomadTokenID"),
    Status: f.str("Status"),
    StatusDescription: f.str("StatusDescription"),
    Stable: f.bool("Stable"),
    Version: f.int("Version"),
    SubmitTime: f.optInt("SubmitTime") ?? null,
    CreateIndex: f.int("CreateIndex"),
    ModifyIndex: f.int("ModifyIndex"),
    JobModifyIndex: f.int("JobModifyIndex"),
  };
  const inherited: Inherited = {
    update: jobUpdate,
    reschedule: partialReschedule(f.child("Reschedule")),
    migrate: partialMigrate(f.child("Migrate")),
  };
  job.TaskGroups = f.list("TaskGroups")?.map((g) => group(g, job, inherited)) ?? null;
  return job;
}

/**
 * What the server stores (command/agent ApiJobToStructJob, then the server's admission hooks): the
 * job-level update keeps only stagger and max_parallel, datacenters default to "*".
 */
export function toStoredJob(api: Job): Job {
  const update = api.Update;
  return {
    ...api,
    Datacenters: api.Datacenters === null || api.Datacenters.length === 0 ? ["*"] : api.Datacenters,
    Update: {
      ...zeroUpdate(),
      ...(update !== null && update.MaxParallel > 0
        ? { Stagger: update.Stagger, MaxParallel: update.MaxParallel }
        : {}),
    },
    TaskGroups: (api.TaskGroups ?? []).map((g) => ({
      ...g,
      Scaling: g.Scaling === null ? null : { ...g.Scaling, Target: scalingTarget(api, g.Name) },
    })),
  };
}

const zeroUpdate = (): UpdateStrategy => ({
  Stagger: 0,
  MaxParallel: 0,
  HealthCheck: "",
  MinHealthyTime: 0,
  HealthyDeadline: 0,
  ProgressDeadline: 0,
  AutoRevert: false,
  AutoPromote: false,
  Canary: 0,
});

const scalingTarget = (job: Job, group: string): Record<string, string> => ({
  Namespace: job.Namespace,
  Job: job.ID,
  Group: group,
});

interface Inherited {
  update: Partial<UpdateStrategy> | undefined;
  reschedule: Partial<ReschedulePolicy> | undefined;
  migrate: Partial<MigrateStrategy> | undefined;
}

function group(f: Fields, job: Job, inherited: Inherited): TaskGroup {
  const name = f.str("Name");
  const scaling = f.child("Scaling");
  const count = f.optInt("Count") ?? scaling?.optInt("Min") ?? 1;
  const restart: RestartPolicy = { ...defaultRestart(job.Type), ...partialRestart(f.child("RestartPolicy")) };
  const tg: TaskGroup = {
    Name: name,
    Count: count,
    Update: groupUpdate(job, inherited.update, partialUpdate(f.child("Update"))),
    Migrate: groupMigrate(job, inherited.migrate, partialMigrate(f.child("Migrate"))),
    Constraints: constraints(f),
    Scaling: scaling === undefined ? null : scalingPolicy(scaling, count),
    RestartPolicy: restart,
    Disconnect: null,
    Tasks: [],
    EphemeralDisk: { ...defaultEphemeralDisk(), ...ephemeralDisk(f.child("EphemeralDisk")) },
    Meta: f.stringMap("Meta"),
    ReschedulePolicy: groupReschedule(
      job,
      inherited.reschedule,
      partialReschedule(f.child("ReschedulePolicy")),
    ),
    Affinities: affinities(f),
    Spreads: null,
    Networks: f.list("Networks")?.map(network) ?? null,
    Consul: null,
    Services: null,
    Volumes: volumes(f),
    ShutdownDelay: f.optInt("ShutdownDelay") ?? null,
    StopAfterClientDisconnect: f.optInt("StopAfterClientDisconnect") ?? null,
    MaxClientDisconnect: f.optInt("MaxClientDisconnect") ?? null,
    PreventRescheduleOnLost: f.bool("PreventRescheduleOnLost"),
  };
  tg.Services = f.list("Services")?.map((s) => service(s, `${job.Name}-${name}`, "")) ?? null;
  tg.Tasks = f.list("Tasks")?.map((t) => task(t, tg, job)) ?? [];
  return tg;
}

function groupUpdate(
  job: Job,
  fromJob: Partial<UpdateStrategy> | undefined,
  own: Partial<UpdateStrategy> | undefined,
): UpdateStrategy | null {
  if (own === undefined && fromJob === undefined) return job.Type === "service" ? defaultUpdate() : null;
  return fillUpdate({ ...fromJob, ...own });
}

function groupMigrate(
  job: Job,
  fromJob: Partial<MigrateStrategy> | undefined,
  own: Partial<MigrateStrategy> | undefined,
): MigrateStrategy | null {
  if (own === undefined && fromJob === undefined && job.Type !== "service") return null;
  return { ...defaultMigrate(), ...fromJob, ...own };
}

function groupReschedule(
  job: Job,
  fromJob: Partial<ReschedulePolicy> | undefined,
  own: Partial<ReschedulePolicy> | undefined,
): ReschedulePolicy | null {
  if (job.Type === "system" || job.Type === "sysbatch") return null;
  return { ...defaultReschedule(job.Type), ...fromJob, ...own };
}

const fillUpdate = (partial: Partial<UpdateStrategy>): UpdateStrategy => ({ ...defaultUpdate(), ...partial });

function task(f: Fields, tg: TaskGroup, job: Job): Task {
  const name = f.str("Name");
  const lifecycle = f.child("Lifecycle");
  const payload = f.child("DispatchPayload");
  return {
    Name: name,
    Driver: f.str("Driver"),
    User: f.str("User"),
    Config: f.json("Config") ?? {},
    Env: f.stringMap("Env"),
    Services: f.list("Services")?.map((s) => service(s, `${job.Name}-${tg.Name}-${name}`, name)) ?? null,
    Vault: f.json("Vault"),
    Templates: f.list("Templates")?.map(template) ?? null,
    Constraints: constraints(f),
    Affinities: affinities(f),
    Resources: resources(f.child("Resources")),
    RestartPolicy: { ...tg.RestartPolicy, ...partialRestart(f.child("RestartPolicy")) },
    DispatchPayload: payload === undefined ? null : { File: payload.str("File") },
    Lifecycle:
      lifecycle === undefined || lifecycle.str("Hook") === ""
        ? null
        : { Hook: lifecycle.str("Hook"), Sidecar: lifecycle.bool("Sidecar") },
    Meta: f.stringMap("Meta"),
    KillTimeout: f.int("KillTimeout", DEFAULT_KILL_TIMEOUT),
    LogConfig: { ...defaultLogConfig(), ...logConfig(f.child("LogConfig")) },
    Artifacts: f.list("Artifacts")?.map(artifact) ?? null,
    Leader: f.bool("Leader"),
    ShutdownDelay: f.int("ShutdownDelay"),
    VolumeMounts: f.list("VolumeMounts")?.map(volumeMount) ?? null,
    ScalingPolicies: null,
    KillSignal: f.str("KillSignal"),
    Kind: f.str("Kind"),
    CSIPluginConfig: null,
  };
}

function resources(f: Fields | undefined): Resources {
  const r = f ?? Fields.of({}, "Job.TaskGroups.Tasks.Resources");
  const cores = r.int("Cores");
  return {
    CPU: r.optInt("CPU") ?? (cores > 0 ? 0 : DEFAULT_CPU),
    Cores: cores,
    MemoryMB: r.int("MemoryMB", DEFAULT_MEMORY_MB),
    MemoryMaxMB: r.int("MemoryMaxMB"),
    DiskMB: r.int("DiskMB"),
    IOPS: r.int("IOPS"),
    Networks: r.list("Networks")?.map(network) ?? null,
    Devices: null,
  };
}

export function network(f: Fields): NetworkResource {
  const dns = f.child("DNS");
  return {
    Mode: f.str("Mode"),
    Device: f.str("Device"),
    CIDR: f.str("CIDR"),
    IP: f.str("IP"),
    Hostname: f.str("Hostname"),
    MBits: f.int("MBits"),
    DNS:
      dns === undefined
        ? null
        : {
            Servers: dns.strings("Servers"),
            Searches: dns.strings("Searches"),
            Options: dns.strings("Options"),
          },
    ReservedPorts: f.list("ReservedPorts")?.map(port) ?? null,
    DynamicPorts: f.list("DynamicPorts")?.map(port) ?? null,
  };
}

const port = (f: Fields): Port => ({
  Label: f.str("Label"),
  Value: f.int("Value"),
  To: f.int("To"),
  HostNetwork: f.str("HostNetwork", "default"),
});

function service(f: Fields, defaultName: string, taskName: string): Service {
  const onUpdate = f.str("OnUpdate", "require_healthy");
  const checkRestart = f.child("CheckRestart");
  return {
    Name: f.str("Name", defaultName),
    TaskName: f.str("TaskName", taskName),
    PortLabel: f.str("PortLabel"),
    AddressMode: f.str("AddressMode", "auto"),
    Address: f.str("Address"),
    EnableTagOverride: f.bool("EnableTagOverride"),
    Tags: f.strings("Tags"),
    CanaryTags: f.strings("CanaryTags"),
    Checks: f.list("Checks")?.map((c) => check(c, onUpdate, checkRestart)) ?? null,
    Connect: f.json("Connect"),
    Meta: f.stringMap("Meta"),
    CanaryMeta: f.stringMap("CanaryMeta"),
    TaggedAddresses: f.stringMap("TaggedAddresses"),
    Namespace: f.str("Namespace"),
    OnUpdate: onUpdate,
    Provider: f.str("Provider", "consul"),
    Cluster: f.str("Cluster", "default"),
  };
}

function check(f: Fields, serviceOnUpdate: string, serviceRestart: Fields | undefined): ServiceCheck {
  const restart = f.child("CheckRestart") ?? serviceRestart;
  return {
    Name: f.str("Name"),
    Type: f.str("Type"),
    Command: f.str("Command"),
    Args: f.strings("Args"),
    Path: f.str("Path"),
    Protocol: f.str("Protocol"),
    PortLabel: f.str("PortLabel"),
    Expose: f.bool("Expose"),
    AddressMode: f.str("AddressMode"),
    Interval: f.int("Interval"),
    Timeout: f.int("Timeout"),
    InitialStatus: f.str("InitialStatus"),
    TLSServerName: f.str("TLSServerName"),
    TLSSkipVerify: f.bool("TLSSkipVerify"),
    Method: f.str("Method"),
    Header: headers(f),
    CheckRestart:
      restart === undefined
        ? null
        : {
            Limit: restart.int("Limit"),
            Grace: restart.int("Grace", NS.s),
            IgnoreWarnings: restart.bool("IgnoreWarnings"),
          },
    GRPCService: f.str("GRPCService"),
    GRPCUseTLS: f.bool("GRPCUseTLS"),
    TaskName: f.str("TaskName"),
    SuccessBeforePassing: f.int("SuccessBeforePassing"),
    FailuresBeforeCritical: f.int("FailuresBeforeCritical"),
    FailuresBeforeWarning: f.int("FailuresBeforeWarning"),
    Body: f.str("Body"),
    OnUpdate: f.str("OnUpdate", serviceOnUpdate),
  };
}

function headers(f: Fields): Record<string, string[]> | null {
  const raw = f.child("Header");
  if (raw === undefined) return null;
  return Object.fromEntries(raw.keys().map((key) => [key, raw.strings(key) ?? []]));
}

const template = (f: Fields): Template => ({
  SourcePath: f.str("SourcePath"),
  DestPath: f.str("DestPath"),
  EmbeddedTmpl: f.str("EmbeddedTmpl"),
  ChangeMode: f.str("ChangeMode", "restart"),
  ChangeSignal: f.str("ChangeSignal").toUpperCase(),
  Splay: f.int("Splay", 5 * NS.s),
  Perms: f.str("Perms", "0644"),
  Uid: f.optInt("Uid") ?? null,
  Gid: f.optInt("Gid") ?? null,
  LeftDelim: f.str("LeftDelim", "{{"),
  RightDelim: f.str("RightDelim", "}}"),
  Envvars: f.bool("Envvars"),
  VaultGrace: f.int("VaultGrace"),
  ErrMissingKey: f.bool("ErrMissingKey"),
  Once: f.bool("Once"),
});

const artifact = (f: Fields): Artifact => ({
  GetterSource: f.str("GetterSource"),
  GetterOptions: f.stringMap("GetterOptions"),
  GetterHeaders: f.stringMap("GetterHeaders"),
  GetterMode: f.str("GetterMode", "any"),
  RelativeDest: f.str("RelativeDest", "local/"),
});

function volumeMount(f: Fields) {
  return {
    Volume: f.str("Volume"),
    Destination: f.str("Destination"),
    ReadOnly: f.bool("ReadOnly"),
    PropagationMode: f.str("PropagationMode", "private"),
    SELinuxLabel: f.str("SELinuxLabel"),
  };
}

function volumes(f: Fields): TaskGroup["Volumes"] {
  const raw = f.json("Volumes");
  if (raw === null) return null;
  const out: NonNullable<TaskGroup["Volumes"]> = {};
  for (const name of Object.keys(raw)) {
    const v = Fields.of(raw[name], "Job.TaskGroups.Volumes");
    out[name] = {
      Name: v.str("Name", name),
      Type: v.str("Type"),
      Source: v.str("Source"),
      ReadOnly: v.bool("ReadOnly"),
      AccessMode: v.str("AccessMode"),
      AttachmentMode: v.str("AttachmentMode"),
      PerAlloc: v.bool("PerAlloc"),
      MountOptions: null,
    };
  }
  return out;
}

function scalingPolicy(f: Fields, count: number): ScalingPolicy {
  return {
    ID: f.str("ID"),
    Type: f.str("Type", "horizontal"),
    Target: f.stringMap("Target") ?? {},
    Policy: f.json("Policy"),
    Min: f.int("Min", count),
    Max: f.int("Max"),
    Enabled: f.bool("Enabled", true),
    CreateIndex: 0,
    ModifyIndex: 0,
  };
}

function constraints(f: Fields): Constraint[] | null {
  return (
    f.list("Constraints")?.map((c) => ({
      LTarget: c.str("LTarget"),
      RTarget: c.str("RTarget"),
      Operand: c.str("Operand", "="),
    })) ?? null
  );
}

function affinities(f: Fields): Affinity[] | null {
  return (
    f.list("Affinities")?.map((c) => ({
      LTarget: c.str("LTarget"),
      RTarget: c.str("RTarget"),
      Operand: c.str("Operand", "="),
      Weight: c.int("Weight", 50),
    })) ?? null
  );
}

function periodic(f: Fields | undefined): PeriodicConfig | null {
  if (f === undefined) return null;
  return {
    Enabled: f.bool("Enabled", true),
    Spec: f.str("Spec"),
    Specs: f.strings("Specs"),
    SpecType: f.str("SpecType", "cron"),
    ProhibitOverlap: f.bool("ProhibitOverlap"),
    TimeZone: f.str("TimeZone", "UTC"),
  };
}

function parameterized(f: Fields | undefined): ParameterizedJobConfig | null {
  if (f === undefined) return null;
  return {
    Payload: f.str("Payload", "optional"),
    MetaRequired: f.strings("MetaRequired"),
    MetaOptional: f.strings("MetaOptional"),
  };
}

/** Only the fields present, so job-level and group-level blocks merge field by field. */
function pick<T>(
  f: Fields | undefined,
  ints: readonly string[],
  strs: readonly string[],
  bools: readonly string[],
) {
  if (f === undefined) return undefined;
  const out: Record<string, number | string | boolean> = {};
  for (const key of ints) if (f.has(key)) out[key] = f.int(key);
  for (const key of strs) if (f.has(key)) out[key] = f.str(key);
  for (const key of bools) if (f.has(key)) out[key] = f.bool(key);
  return out as Partial<T>;
}

const partialUpdate = (f: Fields | undefined) =>
  pick<UpdateStrategy>(
    f,
    ["Stagger", "MaxParallel", "MinHealthyTime", "HealthyDeadline", "ProgressDeadline", "Canary"],
    ["HealthCheck"],
    ["AutoRevert", "AutoPromote"],
  );

const partialRestart = (f: Fields | undefined) =>
  pick<RestartPolicy>(f, ["Attempts", "Interval", "Delay"], ["Mode"], ["RenderTemplates"]);

const partialReschedule = (f: Fields | undefined) =>
  pick<ReschedulePolicy>(f, ["Attempts", "Interval", "Delay", "MaxDelay"], ["DelayFunction"], ["Unlimited"]);

const partialMigrate = (f: Fields | undefined) =>
  pick<MigrateStrategy>(f, ["MaxParallel", "MinHealthyTime", "HealthyDeadline"], ["HealthCheck"], []);

const ephemeralDisk = (f: Fields | undefined) => pick(f, ["SizeMB"], [], ["Sticky", "Migrate"]);

const logConfig = (f: Fields | undefined) => pick(f, ["MaxFiles", "MaxFileSizeMB"], [], ["Disabled"]);
