import { canonicalJson, isRecord } from "./json.js";
import type { Job, NetworkResource, Port, Service, ServiceCheck, Task, TaskGroup } from "./types.js";

/**
 * Job diffs as nomad/structs/diff.go computes them: primitive fields flattened ("Env[foo]",
 * "Config" keys like "ports[0]"), objects diffed by name, sets (constraints, networks, templates)
 * matched by content, contextual objects listing their unchanged fields as "None".
 */

export type DiffType = "None" | "Added" | "Deleted" | "Edited";

export interface FieldDiff {
  Type: DiffType;
  Name: string;
  Old: string;
  New: string;
  Annotations: string[] | null;
}

export interface ObjectDiff {
  Type: DiffType;
  Name: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
}

export interface TaskDiff {
  Type: DiffType;
  Name: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
  Annotations: string[] | null;
}

export interface TaskGroupDiff {
  Type: DiffType;
  Name: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
  Tasks: TaskDiff[] | null;
  Updates: Record<string, number> | null;
}

export interface JobDiff {
  Type: DiffType;
  ID: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
  TaskGroups: TaskGroupDiff[] | null;
}

type Flat = Record<string, string>;
type Obj = Record<string, unknown>;

/** Map fields flatmap expands even in primitive-only mode ("Meta[key]"). */
const MAP_FIELDS = new Set([
  "Meta",
  "Env",
  "CanaryMeta",
  "TaggedAddresses",
  "GetterOptions",
  "GetterHeaders",
]);

/** flatmap.Flatten(obj, filter, true): top-level primitives and string maps. */
export function flattenPrimitive(obj: unknown, filter: readonly string[] = []): Flat {
  const flat: Flat = {};
  if (!isRecord(obj)) return flat;
  for (const [key, value] of Object.entries(obj)) {
    if (filter.includes(key)) continue;
    if (MAP_FIELDS.has(key) && isRecord(value)) {
      for (const [k, v] of Object.entries(value)) if (isPrimitive(v)) flat[`${key}[${k}]`] = String(v);
    } else if (isPrimitive(value)) flat[key] = String(value);
  }
  return flat;
}

/** flatmap.Flatten(obj, nil, false) on a free-form map (driver config). */
export function flattenDeep(value: unknown, prefix = "", flat: Flat = {}): Flat {
  if (isPrimitive(value)) flat[prefix] = String(value);
  else if (Array.isArray(value)) value.forEach((v, i) => flattenDeep(v, `${prefix}[${i}]`, flat));
  else if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) flattenDeep(v, prefix === "" ? k : `${prefix}[${k}]`, flat);
  }
  return flat;
}

const isPrimitive = (v: unknown): v is string | number | boolean =>
  typeof v === "string" || typeof v === "number" || typeof v === "boolean";

function fieldDiff(old: string, next: string, name: string, contextual: boolean): FieldDiff | undefined {
  if (old === next)
    return contextual ? { Type: "None", Name: name, Old: old, New: next, Annotations: null } : undefined;
  const type: DiffType = old === "" ? "Added" : next === "" ? "Deleted" : "Edited";
  return { Type: type, Name: name, Old: old, New: next, Annotations: null };
}

export function fieldDiffs(old: Flat, next: Flat, contextual: boolean): FieldDiff[] {
  const names = new Set([...Object.keys(old), ...Object.keys(next)]);
  return [...names]
    .map((name) => fieldDiff(old[name] ?? "", next[name] ?? "", name, contextual))
    .filter((d): d is FieldDiff => d !== undefined)
    .sort(byFieldName);
}

const byFieldName = (a: FieldDiff, b: FieldDiff): number =>
  a.Name < b.Name
    ? -1
    : a.Name > b.Name
      ? 1
      : a.Old < b.Old
        ? -1
        : a.Old > b.Old
          ? 1
          : a.New < b.New
            ? -1
            : 1;

const typeRank: Record<DiffType, number> = { Edited: 0, Added: 1, Deleted: 2, None: 3 };

const byObjectName = (a: ObjectDiff, b: ObjectDiff): number =>
  a.Name !== b.Name ? (a.Name < b.Name ? -1 : 1) : typeRank[a.Type] - typeRank[b.Type];

const orNull = <T>(list: T[]): T[] | null => (list.length === 0 ? null : list);

/** primitiveObjectDiff: undefined when nothing changed, even in contextual mode. */
export function primitiveObjectDiff(
  old: unknown,
  next: unknown,
  name: string,
  contextual: boolean,
  filter: string[] = [],
): ObjectDiff | undefined {
  const fields = fieldDiffs(flattenPrimitive(old, filter), flattenPrimitive(next, filter), contextual);
  const type = typeOfFields(fields);
  return type === undefined ? undefined : { Type: type, Name: name, Fields: orNull(fields), Objects: null };
}

function typeOfFields(fields: readonly FieldDiff[]): DiffType | undefined {
  const types = new Set(fields.map((f) => f.Type));
  if (types.has("Edited") || (types.has("Added") && types.has("Deleted"))) return "Edited";
  if (types.has("Added")) return "Added";
  if (types.has("Deleted")) return "Deleted";
  return undefined;
}

/** primitiveObjectSetDiff: elements matched by content; a changed element is a Deleted/Added pair. */
function setDiff(
  old: readonly unknown[] | null,
  next: readonly unknown[] | null,
  name: string,
  contextual: boolean,
): ObjectDiff[] {
  const keyed = (list: readonly unknown[] | null) => new Map((list ?? []).map((o) => [canonicalJson(o), o]));
  const a = keyed(old);
  const b = keyed(next);
  const diffs = [
    ...[...a].filter(([k]) => !b.has(k)).map(([, o]) => primitiveObjectDiff(o, undefined, name, contextual)),
    ...[...b].filter(([k]) => !a.has(k)).map(([, o]) => primitiveObjectDiff(undefined, o, name, contextual)),
  ];
  return diffs.filter((d): d is ObjectDiff => d !== undefined).sort(byObjectName);
}

export function stringSetDiff(
  old: readonly string[] | null,
  next: readonly string[] | null,
  name: string,
  contextual: boolean,
): ObjectDiff | undefined {
  const a = new Set(old ?? []);
  const b = new Set(next ?? []);
  const removed = [...a].filter((v) => !b.has(v));
  const added = [...b].filter((v) => !a.has(v));
  if (removed.length === 0 && added.length === 0 && !contextual) return undefined;
  const fields = [
    ...removed.map((v) => fieldDiff(v, "", name, contextual)),
    ...(contextual ? [...a].filter((v) => b.has(v)).map((v) => fieldDiff(v, v, name, true)) : []),
    ...added.map((v) => fieldDiff("", v, name, contextual)),
  ].filter((d): d is FieldDiff => d !== undefined);
  if (fields.length === 0) return undefined;
  fields.sort(byFieldName);
  const type: DiffType =
    added.length > 0 && removed.length > 0
      ? "Edited"
      : added.length > 0
        ? "Added"
        : removed.length > 0
          ? "Deleted"
          : "None";
  return { Type: type, Name: name, Fields: fields, Objects: null };
}

/** Job.Diff(other, contextual). `old` undefined: the job is new (every field "Added"). */
export function jobDiff(old: Job | undefined, next: Job, contextual: boolean): JobDiff {
  const filter = [
    "ID",
    "Status",
    "StatusDescription",
    "Version",
    "Stable",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "Update",
    "SubmitTime",
    "NomadTokenID",
    "VaultToken",
  ];
  const objects = [
    ...maybe(
      stringSetDiff(old?.Datacenters ?? null, next.Datacenters, "Datacenters", contextual),
      (d) => d.Type !== "None",
    ),
    ...setDiff(old?.Constraints ?? null, next.Constraints, "Constraint", contextual),
    ...setDiff(old?.Affinities ?? null, next.Affinities, "Affinity", contextual),
    ...maybe(
      primitiveObjectDiff(old?.Periodic ?? undefined, next.Periodic ?? undefined, "Periodic", contextual),
    ),
    ...maybe(
      primitiveObjectDiff(
        old?.ParameterizedJob ?? undefined,
        next.ParameterizedJob ?? undefined,
        "ParameterizedJob",
        contextual,
      ),
    ),
  ];
  const diff: JobDiff = {
    Type: old === undefined ? "Added" : "None",
    ID: next.ID,
    Fields: orNull(fieldDiffs(flattenPrimitive(old, filter), flattenPrimitive(next, filter), false)),
    Objects: orNull(objects),
    TaskGroups: orNull(groupDiffs(old?.TaskGroups ?? [], next.TaskGroups ?? [], contextual)),
  };
  if (diff.Type === "None" && anyChange(diff)) diff.Type = "Edited";
  return diff;
}

function maybe<T>(value: T | undefined, keep: (v: T) => boolean = () => true): T[] {
  return value !== undefined && keep(value) ? [value] : [];
}

const anyChange = (d: {
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
  TaskGroups?: TaskGroupDiff[] | null;
}): boolean =>
  [...(d.Fields ?? []), ...(d.Objects ?? []), ...(d.TaskGroups ?? [])].some((x) => x.Type !== "None");

function groupDiffs(
  old: readonly TaskGroup[],
  next: readonly TaskGroup[],
  contextual: boolean,
): TaskGroupDiff[] {
  const names = new Set([...old.map((g) => g.Name), ...next.map((g) => g.Name)]);
  return [...names].sort().map((name) =>
    groupDiff(
      old.find((g) => g.Name === name),
      next.find((g) => g.Name === name),
      contextual,
    ),
  );
}

const POINTER_DURATIONS = ["ShutdownDelay", "StopAfterClientDisconnect", "MaxClientDisconnect"];

function groupDiff(
  old: TaskGroup | undefined,
  next: TaskGroup | undefined,
  contextual: boolean,
): TaskGroupDiff {
  const name = next?.Name ?? old?.Name ?? "";
  const type: DiffType =
    old === undefined
      ? "Added"
      : next === undefined
        ? "Deleted"
        : canonicalJson(old) === canonicalJson(next)
          ? "None"
          : "Edited";
  const both = old !== undefined && next !== undefined;
  const filter = both ? ["Name"] : ["Name", ...POINTER_DURATIONS];
  const objects = [
    ...setDiff(old?.Constraints ?? null, next?.Constraints ?? null, "Constraint", contextual),
    ...setDiff(old?.Affinities ?? null, next?.Affinities ?? null, "Affinity", contextual),
    ...maybe(primitiveObjectDiff(old?.RestartPolicy, next?.RestartPolicy, "RestartPolicy", contextual)),
    ...maybe(
      primitiveObjectDiff(
        old?.ReschedulePolicy ?? undefined,
        next?.ReschedulePolicy ?? undefined,
        "ReschedulePolicy",
        contextual,
      ),
    ),
    ...maybe(primitiveObjectDiff(old?.EphemeralDisk, next?.EphemeralDisk, "EphemeralDisk", contextual)),
    ...maybe(
      primitiveObjectDiff(old?.Update ?? undefined, next?.Update ?? undefined, "Update", contextual, [
        "Stagger",
      ]),
    ),
    ...networkDiffs(old?.Networks ?? null, next?.Networks ?? null, contextual),
    ...maybe(
      primitiveObjectDiff(old?.Scaling ?? undefined, next?.Scaling ?? undefined, "Scaling", contextual, [
        "CreateIndex",
        "ModifyIndex",
        "ID",
        "Type",
      ]),
    ),
    ...serviceDiffs(old?.Services ?? null, next?.Services ?? null, contextual),
  ];
  return {
    Type: type,
    Name: name,
    Fields: orNull(fieldDiffs(flattenPrimitive(old, filter), flattenPrimitive(next, filter), false)),
    Objects: orNull(objects),
    Tasks: orNull(taskDiffs(old?.Tasks ?? [], next?.Tasks ?? [], contextual)),
    Updates: null,
  };
}

function taskDiffs(old: readonly Task[], next: readonly Task[], contextual: boolean): TaskDiff[] {
  const names = new Set([...old.map((t) => t.Name), ...next.map((t) => t.Name)]);
  return [...names].sort().map((name) =>
    taskDiff(
      old.find((t) => t.Name === name),
      next.find((t) => t.Name === name),
      contextual,
    ),
  );
}

function taskDiff(old: Task | undefined, next: Task | undefined, contextual: boolean): TaskDiff {
  const type: DiffType =
    old === undefined
      ? "Added"
      : next === undefined
        ? "Deleted"
        : canonicalJson(old) === canonicalJson(next)
          ? "None"
          : "Edited";
  const objects = [
    ...setDiff(old?.Constraints ?? null, next?.Constraints ?? null, "Constraint", contextual),
    ...setDiff(old?.Affinities ?? null, next?.Affinities ?? null, "Affinity", contextual),
    ...maybe(configDiff(old?.Config, next?.Config, contextual)),
    ...maybe(resourcesDiff(old?.Resources, next?.Resources, contextual)),
    ...maybe(primitiveObjectDiff(old?.LogConfig, next?.LogConfig, "LogConfig", contextual)),
    ...maybe(
      primitiveObjectDiff(
        old?.DispatchPayload ?? undefined,
        next?.DispatchPayload ?? undefined,
        "DispatchPayload",
        contextual,
      ),
    ),
    ...setDiff(old?.Artifacts ?? null, next?.Artifacts ?? null, "Artifact", contextual),
    ...serviceDiffs(old?.Services ?? null, next?.Services ?? null, contextual),
    ...maybe(primitiveObjectDiff(old?.Vault ?? undefined, next?.Vault ?? undefined, "Vault", contextual)),
    ...setDiff(old?.Templates ?? null, next?.Templates ?? null, "Template", contextual),
  ];
  return {
    Type: type,
    Name: next?.Name ?? old?.Name ?? "",
    Fields: orNull(
      fieldDiffs(
        flattenPrimitive(old, ["Name", "Config"]),
        flattenPrimitive(next, ["Name", "Config"]),
        false,
      ),
    ),
    Objects: orNull(objects),
    Annotations: null,
  };
}

function configDiff(
  old: Obj | undefined,
  next: Obj | undefined,
  contextual: boolean,
): ObjectDiff | undefined {
  if (canonicalJson(old ?? {}) === canonicalJson(next ?? {})) return undefined;
  const type: DiffType =
    Object.keys(old ?? {}).length === 0
      ? "Added"
      : Object.keys(next ?? {}).length === 0
        ? "Deleted"
        : "Edited";
  return {
    Type: type,
    Name: "Config",
    Fields: orNull(fieldDiffs(flattenDeep(old ?? {}), flattenDeep(next ?? {}), contextual)),
    Objects: null,
  };
}

function resourcesDiff(
  old: Task["Resources"] | undefined,
  next: Task["Resources"] | undefined,
  contextual: boolean,
): ObjectDiff | undefined {
  if (canonicalJson(old) === canonicalJson(next)) return undefined;
  const type: DiffType = old === undefined ? "Added" : next === undefined ? "Deleted" : "Edited";
  const objects = networkDiffs(old?.Networks ?? null, next?.Networks ?? null, contextual);
  return {
    Type: type,
    Name: "Resources",
    Fields: orNull(fieldDiffs(flattenPrimitive(old), flattenPrimitive(next), contextual)),
    Objects: orNull(objects),
  };
}

function networkDiffs(
  old: NetworkResource[] | null,
  next: NetworkResource[] | null,
  contextual: boolean,
): ObjectDiff[] {
  const keyed = (list: NetworkResource[] | null) => new Map((list ?? []).map((n) => [canonicalJson(n), n]));
  const a = keyed(old);
  const b = keyed(next);
  return [
    ...[...a].filter(([k]) => !b.has(k)).map(([, n]) => networkDiff(n, undefined, contextual)),
    ...[...b].filter(([k]) => !a.has(k)).map(([, n]) => networkDiff(undefined, n, contextual)),
  ].sort(byObjectName);
}

function networkDiff(
  old: NetworkResource | undefined,
  next: NetworkResource | undefined,
  contextual: boolean,
): ObjectDiff {
  const filter = ["Device", "CIDR", "IP"];
  const ports = [
    ...portDiffs(old?.ReservedPorts ?? [], next?.ReservedPorts ?? [], "Static Port", [], contextual),
    ...portDiffs(old?.DynamicPorts ?? [], next?.DynamicPorts ?? [], "Dynamic Port", ["Value"], contextual),
  ];
  return {
    Type: old === undefined ? "Added" : "Deleted",
    Name: "Network",
    Fields: orNull(fieldDiffs(flattenPrimitive(old, filter), flattenPrimitive(next, filter), contextual)),
    Objects: orNull(ports),
  };
}

function portDiffs(
  old: readonly Port[],
  next: readonly Port[],
  name: string,
  filter: string[],
  contextual: boolean,
): ObjectDiff[] {
  const labels = new Set([...old.map((p) => p.Label), ...next.map((p) => p.Label)]);
  return [...labels]
    .map((label) =>
      primitiveObjectDiff(
        old.find((p) => p.Label === label),
        next.find((p) => p.Label === label),
        name,
        contextual,
        filter,
      ),
    )
    .filter((d): d is ObjectDiff => d !== undefined)
    .sort(byObjectName);
}

/** serviceDiffs: services matched by name, port label and position (findServiceMatch). */
function serviceDiffs(
  old: readonly Service[] | null,
  next: readonly Service[] | null,
  contextual: boolean,
): ObjectDiff[] {
  const a = old ?? [];
  const b = next ?? [];
  const matched = new Set<number>();
  const diffs: (ObjectDiff | undefined)[] = [];
  a.forEach((service, i) => {
    const j = matchService(service, i, b, matched);
    if (j >= 0) matched.add(j);
    diffs.push(serviceDiff(service, j >= 0 ? b[j] : undefined, contextual));
  });
  b.forEach((service, j) => {
    if (!matched.has(j)) diffs.push(serviceDiff(undefined, service, contextual));
  });
  return diffs.filter((d): d is ObjectDiff => d !== undefined).sort(byObjectName);
}

function matchService(
  service: Service,
  index: number,
  candidates: readonly Service[],
  taken: Set<number>,
): number {
  let best = -1;
  let bestScore = 2;
  candidates.forEach((s, i) => {
    if (taken.has(i)) return;
    const score =
      (i === index ? 1 : 0) + (s.PortLabel === service.PortLabel ? 2 : 0) + (s.Name === service.Name ? 3 : 0);
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  });
  return best;
}

function serviceDiff(
  old: Service | undefined,
  next: Service | undefined,
  contextual: boolean,
): ObjectDiff | undefined {
  if (canonicalJson(old) === canonicalJson(next)) return undefined;
  const type: DiffType = old === undefined ? "Added" : next === undefined ? "Deleted" : "Edited";
  const objects = [
    ...maybe(stringSetDiff(old?.CanaryTags ?? null, next?.CanaryTags ?? null, "CanaryTags", contextual)),
    ...maybe(stringSetDiff(old?.Tags ?? null, next?.Tags ?? null, "Tags", contextual)),
    ...checkDiffs(old?.Checks ?? [], next?.Checks ?? [], contextual),
  ];
  return {
    Type: type,
    Name: "Service",
    Fields: orNull(fieldDiffs(flattenPrimitive(old), flattenPrimitive(next), contextual)),
    Objects: orNull(objects),
  };
}

function checkDiffs(
  old: readonly ServiceCheck[],
  next: readonly ServiceCheck[],
  contextual: boolean,
): ObjectDiff[] {
  const names = new Set([...old.map((c) => c.Name), ...next.map((c) => c.Name)]);
  return [...names]
    .map((name): ObjectDiff | undefined => {
      const a = old.find((c) => c.Name === name);
      const b = next.find((c) => c.Name === name);
      if (canonicalJson(a) === canonicalJson(b)) return undefined;
      const type: DiffType = a === undefined ? "Added" : b === undefined ? "Deleted" : "Edited";
      const restart = primitiveObjectDiff(
        a?.CheckRestart ?? undefined,
        b?.CheckRestart ?? undefined,
        "CheckRestart",
        contextual,
      );
      return {
        Type: type,
        Name: "Check",
        Fields: orNull(fieldDiffs(flattenPrimitive(a), flattenPrimitive(b), contextual)),
        Objects: orNull(maybe(restart)),
      };
    })
    .filter((d): d is ObjectDiff => d !== undefined)
    .sort(byObjectName);
}
