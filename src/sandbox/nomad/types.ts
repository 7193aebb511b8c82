import type { JsonObject } from "./json.js";

/**
 * Nomad's objects as the HTTP API serializes them (PascalCase, durations in nanoseconds, nil pointers
 * and slices as null). Field sets follow nomad/structs; only what the double fills is typed precisely.
 */

export interface Constraint {
  LTarget: string;
  RTarget: string;
  Operand: string;
}

export interface Affinity extends Constraint {
  Weight: number;
}

export interface Port {
  Label: string;
  Value: number;
  To: number;
  HostNetwork: string;
}

export interface NetworkResource {
  Mode: string;
  Device: string;
  CIDR: string;
  IP: string;
  Hostname: string;
  MBits: number;
  DNS: { Servers: string[] | null; Searches: string[] | null; Options: string[] | null } | null;
  ReservedPorts: Port[] | null;
  DynamicPorts: Port[] | null;
}

export interface RestartPolicy {
  Attempts: number;
  Interval: number;
  Delay: number;
  Mode: string;
  RenderTemplates: boolean;
}

export interface ReschedulePolicy {
  Attempts: number;
  Interval: number;
  Delay: number;
  DelayFunction: string;
  MaxDelay: number;
  Unlimited: boolean;
}

export interface UpdateStrategy {
  Stagger: number;
  MaxParallel: number;
  HealthCheck: string;
  MinHealthyTime: number;
  HealthyDeadline: number;
  ProgressDeadline: number;
  AutoRevert: boolean;
  AutoPromote: boolean;
  Canary: number;
}

export interface MigrateStrategy {
  MaxParallel: number;
  HealthCheck: string;
  MinHealthyTime: number;
  HealthyDeadline: number;
}

export interface EphemeralDisk {
  Sticky: boolean;
  SizeMB: number;
  Migrate: boolean;
}

export interface ServiceCheck {
  Name: string;
  Type: string;
  Command: string;
  Args: string[] | null;
  Path: string;
  Protocol: string;
  PortLabel: string;
  Expose: boolean;
  AddressMode: string;
  Interval: number;
  Timeout: number;
  InitialStatus: string;
  TLSServerName: string;
  TLSSkipVerify: boolean;
  Method: string;
  Header: Record<string, string[]> | null;
  CheckRestart: { Limit: number; Grace: number; IgnoreWarnings: boolean } | null;
  GRPCService: string;
  GRPCUseTLS: boolean;
  TaskName: string;
  SuccessBeforePassing: number;
  FailuresBeforeCritical: number;
  FailuresBeforeWarning: number;
  Body: string;
  OnUpdate: string;
}

export interface Service {
  Name: string;
  TaskName: string;
  PortLabel: string;
  AddressMode: string;
  Address: string;
  EnableTagOverride: boolean;
  Tags: string[] | null;
  CanaryTags: string[] | null;
  Checks: ServiceCheck[] | null;
  Connect: JsonObject | null;
  Meta: Record<string, string> | null;
  CanaryMeta: Record<string, string> | null;
  TaggedAddresses: Record<string, string> | null;
  Namespace: string;
  OnUpdate: string;
  Provider: string;
  Cluster: string;
}

export interface Template {
  SourcePath: string;
  DestPath: string;
  EmbeddedTmpl: string;
  ChangeMode: string;
  ChangeSignal: string;
  Splay: number;
  Perms: string;
  Uid: number | null;
  Gid: number | null;
  LeftDelim: string;
  RightDelim: string;
  Envvars: boolean;
  VaultGrace: number;
  ErrMissingKey: boolean;
  Once: boolean;
}

export interface Resources {
  CPU: number;
  Cores: number;
  MemoryMB: number;
  MemoryMaxMB: number;
  DiskMB: number;
  IOPS: number;
  Networks: NetworkResource[] | null;
  Devices: JsonObject[] | null;
}

export interface LogConfig {
  MaxFiles: number;
  MaxFileSizeMB: number;
  Disabled: boolean;
}

export interface Artifact {
  GetterSource: string;
  GetterOptions: Record<string, string> | null;
  GetterHeaders: Record<string, string> | null;
  GetterMode: string;
  RelativeDest: string;
}

export interface Task {
  Name: string;
  Driver: string;
  User: string;
  Config: JsonObject;
  Env: Record<string, string> | null;
  Services: Service[] | null;
  Vault: JsonObject | null;
  Templates: Template[] | null;
  Constraints: Constraint[] | null;
  Affinities: Affinity[] | null;
  Resources: Resources;
  RestartPolicy: RestartPolicy;
  DispatchPayload: { File: string } | null;
  Lifecycle: { Hook: string; Sidecar: boolean } | null;
  Meta: Record<string, string> | null;
  KillTimeout: number;
  LogConfig: LogConfig;
  Artifacts: Artifact[] | null;
  Leader: boolean;
  ShutdownDelay: number;
  VolumeMounts: JsonObject[] | null;
  ScalingPolicies: null;
  KillSignal: string;
  Kind: string;
  CSIPluginConfig: null;
}

export interface ScalingPolicy {
  ID: string;
  Type: string;
  Target: Record<string, string>;
  Policy: JsonObject | null;
  Min: number;
  Max: number;
  Enabled: boolean;
  CreateIndex: number;
  ModifyIndex: number;
}

export interface TaskGroup {
  Name: string;
  Count: number;
  Update: UpdateStrategy | null;
  Migrate: MigrateStrategy | null;
  Constraints: Constraint[] | null;
  Scaling: ScalingPolicy | null;
  RestartPolicy: RestartPolicy;
  Disconnect: null;
  Tasks: Task[];
  EphemeralDisk: EphemeralDisk;
  Meta: Record<string, string> | null;
  ReschedulePolicy: ReschedulePolicy | null;
  Affinities: Affinity[] | null;
  Spreads: JsonObject[] | null;
  Networks: NetworkResource[] | null;
  Consul: null;
  Services: Service[] | null;
  Volumes: Record<string, JsonObject> | null;
  ShutdownDelay: number | null;
  StopAfterClientDisconnect: number | null;
  MaxClientDisconnect: number | null;
  PreventRescheduleOnLost: boolean;
}

export interface PeriodicConfig {
  Enabled: boolean;
  Spec: string;
  Specs: string[] | null;
  SpecType: string;
  ProhibitOverlap: boolean;
  TimeZone: string;
}

export interface ParameterizedJobConfig {
  Payload: string;
  MetaRequired: string[] | null;
  MetaOptional: string[] | null;
}

export interface Job {
  Stop: boolean;
  Region: string;
  Namespace: string;
  ID: string;
  ParentID: string;
  Name: string;
  Type: string;
  Priority: number;
  AllAtOnce: boolean;
  Datacenters: string[] | null;
  NodePool: string;
  Constraints: Constraint[] | null;
  Affinities: Affinity[] | null;
  Spreads: JsonObject[] | null;
  TaskGroups: TaskGroup[] | null;
  Update: UpdateStrategy | null;
  Multiregion: null;
  Periodic: PeriodicConfig | null;
  ParameterizedJob: ParameterizedJobConfig | null;
  Dispatched: boolean;
  DispatchIdempotencyToken: string;
  Payload: null;
  Meta: Record<string, string> | null;
  ConsulToken: string;
  ConsulNamespace: string;
  VaultToken: string;
  VaultNamespace: string;
  NomadTokenID: string;
  Status: string;
  StatusDescription: string;
  Stable: boolean;
  Version: number;
  SubmitTime: number | null;
  CreateIndex: number;
  ModifyIndex: number;
  JobModifyIndex: number;
}

export interface TaskEvent {
  Type: string;
  Time: number;
  DisplayMessage: string;
  Details: Record<string, string>;
  FailsTask: boolean;
  RestartReason: string;
  SetupError: string;
  DriverError: string;
  ExitCode: number;
  Signal: number;
  Message: string;
  KillReason: string;
  KillTimeout: number;
  KillError: string;
  StartDelay: number;
  DownloadError: string;
  ValidationError: string;
  DiskLimit: number;
  FailedSibling: string;
  VaultError: string;
  TaskSignalReason: string;
  TaskSignal: string;
  DriverMessage: string;
  GenericSource: string;
}

export interface TaskState {
  State: "pending" | "running" | "dead";
  Failed: boolean;
  Restarts: number;
  LastRestart: string | null;
  StartedAt: string | null;
  FinishedAt: string | null;
  Events: TaskEvent[];
  TaskHandle: null;
}

export interface AllocDeploymentStatus {
  Healthy: boolean | null;
  Timestamp: string;
  Canary: boolean;
  ModifyIndex: number;
}

export interface RescheduleEvent {
  RescheduleTime: number;
  PrevAllocID: string;
  PrevNodeID: string;
  Delay: number;
}

export interface DesiredTransition {
  Migrate: boolean | null;
  Reschedule: boolean | null;
  ForceReschedule: boolean | null;
  NoShutdownDelay: boolean | null;
}

export interface AllocMetric {
  NodesEvaluated: number;
  NodesFiltered: number;
  NodesInPool: number;
  NodesAvailable: Record<string, number>;
  ClassFiltered: Record<string, number> | null;
  ConstraintFiltered: Record<string, number> | null;
  NodesExhausted: number;
  ClassExhausted: Record<string, number> | null;
  DimensionExhausted: Record<string, number> | null;
  QuotaExhausted: string[] | null;
  ResourcesExhausted: Record<string, JsonObject> | null;
  Scores: Record<string, number> | null;
  ScoreMetaData: JsonObject[] | null;
  AllocationTime: number;
  CoalescedFailures: number;
}

export interface SimpleResources {
  CPU: number;
  Cores: number;
  MemoryMB: number;
  MemoryMaxMB: number;
  DiskMB: number;
  IOPS: number;
  Networks: NetworkResource[] | null;
  Devices: null;
}

export interface Allocation {
  ID: string;
  Namespace: string;
  EvalID: string;
  Name: string;
  NodeID: string;
  NodeName: string;
  JobID: string;
  Job: Job | null;
  TaskGroup: string;
  Resources: SimpleResources;
  SharedResources: SimpleResources;
  TaskResources: Record<string, SimpleResources>;
  AllocatedResources: Record<string, unknown>;
  Metrics: AllocMetric;
  DesiredStatus: "run" | "stop" | "evict";
  DesiredDescription: string;
  DesiredTransition: DesiredTransition;
  ClientStatus: "pending" | "running" | "complete" | "failed" | "lost" | "unknown";
  ClientDescription: string;
  TaskStates: Record<string, TaskState> | null;
  AllocStates: null;
  PreviousAllocation: string;
  NextAllocation: string;
  DeploymentID: string;
  DeploymentStatus: AllocDeploymentStatus | null;
  RescheduleTracker: { Events: RescheduleEvent[] } | null;
  NetworkStatus: null;
  FollowupEvalID: string;
  PreemptedAllocations: string[] | null;
  PreemptedByAllocation: string;
  CreateIndex: number;
  ModifyIndex: number;
  AllocModifyIndex: number;
  CreateTime: number;
  ModifyTime: number;
}

export interface Evaluation {
  ID: string;
  Namespace: string;
  Priority: number;
  Type: string;
  TriggeredBy: string;
  JobID: string;
  JobModifyIndex: number;
  NodeID: string;
  NodeModifyIndex: number;
  DeploymentID: string;
  Status: "blocked" | "pending" | "complete" | "failed" | "canceled";
  StatusDescription: string;
  Wait: number;
  WaitUntil: string | null;
  NextEval: string;
  PreviousEval: string;
  BlockedEval: string;
  RelatedEvals: EvaluationStub[] | null;
  FailedTGAllocs: Record<string, AllocMetric> | null;
  ClassEligibility: Record<string, boolean> | null;
  QuotaLimitReached: string;
  EscapedComputedClass: boolean;
  AnnotatePlan: boolean;
  QueuedAllocations: Record<string, number> | null;
  LeaderACL: string;
  SnapshotIndex: number;
  CreateIndex: number;
  ModifyIndex: number;
  CreateTime: number;
  ModifyTime: number;
}

export type EvaluationStub = Pick<
  Evaluation,
  | "ID"
  | "Namespace"
  | "Priority"
  | "Type"
  | "TriggeredBy"
  | "JobID"
  | "NodeID"
  | "DeploymentID"
  | "Status"
  | "StatusDescription"
  | "WaitUntil"
  | "NextEval"
  | "PreviousEval"
  | "BlockedEval"
  | "CreateIndex"
  | "ModifyIndex"
  | "CreateTime"
  | "ModifyTime"
>;

export interface DeploymentState {
  AutoRevert: boolean;
  AutoPromote: boolean;
  ProgressDeadline: number;
  RequireProgressBy: string | null;
  Promoted: boolean;
  PlacedCanaries: string[] | null;
  DesiredCanaries: number;
  DesiredTotal: number;
  PlacedAllocs: number;
  HealthyAllocs: number;
  UnhealthyAllocs: number;
}

export interface Deployment {
  ID: string;
  Namespace: string;
  JobID: string;
  JobVersion: number;
  JobModifyIndex: number;
  JobSpecModifyIndex: number;
  JobCreateIndex: number;
  IsMultiregion: boolean;
  TaskGroups: Record<string, DeploymentState>;
  Status: string;
  StatusDescription: string;
  EvalPriority: number;
  CreateIndex: number;
  ModifyIndex: number;
  CreateTime: number;
  ModifyTime: number;
}

export interface NodeEvent {
  Message: string;
  Subsystem: string;
  Details: Record<string, string> | null;
  Timestamp: string;
  CreateIndex: number;
}

export interface DrainStrategy {
  DrainSpec: { Deadline: number; IgnoreSystemJobs: boolean };
  ForceDeadline: string | null;
  StartedAt: string;
}

export interface Node {
  ID: string;
  Datacenter: string;
  Name: string;
  HTTPAddr: string;
  TLSEnabled: boolean;
  Attributes: Record<string, string>;
  NodeResources: JsonObject;
  ReservedResources: JsonObject;
  Links: Record<string, string> | null;
  Meta: Record<string, string>;
  NodeClass: string;
  NodePool: string;
  ComputedClass: string;
  Drain: boolean;
  DrainStrategy: DrainStrategy | null;
  SchedulingEligibility: "eligible" | "ineligible";
  Status: "initializing" | "ready" | "down" | "disconnected";
  StatusDescription: string;
  StatusUpdatedAt: number;
  Events: NodeEvent[];
  Drivers: Record<string, JsonObject>;
  CSIControllerPlugins: null;
  CSINodePlugins: null;
  HostVolumes: null;
  HostNetworks: null;
  LastDrain: JsonObject | null;
  CreateIndex: number;
  ModifyIndex: number;
}

export interface TaskGroupSummary {
  Queued: number;
  Complete: number;
  Failed: number;
  Running: number;
  Starting: number;
  Lost: number;
  Unknown: number;
}

export interface JobSummary {
  JobID: string;
  Namespace: string;
  Summary: Record<string, TaskGroupSummary>;
  Children: { Pending: number; Running: number; Dead: number };
  CreateIndex: number;
  ModifyIndex: number;
}

export interface JobSubmission {
  Source: string;
  Format: string;
  VariableFlags: Record<string, string> | null;
  Variables: string;
  Namespace: string;
  JobID: string;
  Version: number;
  JobModifyIndex: number;
}

/** A node the double simulates: capacity in MHz and MB, as a Nomad client fingerprints it. */
export interface SimNodeSpec {
  name: string;
  cpuMhz?: number;
  memoryMb?: number;
  datacenter?: string;
  nodeClass?: string;
}

export type FailureKind = "image-pull" | "crash-loop" | "oom" | "unhealthy";
