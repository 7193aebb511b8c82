import type { CatalogNode, CatalogService, HealthCheck, ServiceAddress } from "./catalog.js";
import type { JsonObject } from "./json.js";
import type { DirEntry } from "./kv.js";
import type { Session } from "./sessions.js";

/**
 * Consul's JSON for each object, field for field as the community edition's Go structs marshal
 * (no Namespace/Partition: those are Enterprise fields, and omitempty ones are left out).
 */

export function dirEntryJson(entry: DirEntry, withValue = true): JsonObject {
  return {
    LockIndex: entry.lockIndex,
    Key: entry.key,
    Flags: entry.flags,
    Value: withValue && entry.value !== null ? entry.value.toString("base64") : null,
    Session: entry.session === "" ? undefined : entry.session,
    CreateIndex: entry.createIndex,
    ModifyIndex: entry.modifyIndex,
  };
}

export function sessionJson(session: Session): JsonObject {
  return {
    ID: session.id,
    Name: session.name,
    Node: session.node,
    LockDelay: session.lockDelay,
    Behavior: session.behavior,
    TTL: session.ttl,
    NodeChecks: [...session.nodeChecks],
    ServiceChecks: session.serviceChecks?.map((id) => ({ ID: id, Namespace: "" })) ?? null,
    Checks: session.checks.length > 0 ? [...session.checks] : undefined,
    CreateIndex: session.createIndex,
    ModifyIndex: session.modifyIndex,
  };
}

export function checkJson(check: HealthCheck): JsonObject {
  return {
    Node: check.node,
    CheckID: check.checkId,
    Name: check.name,
    Status: check.status,
    Notes: check.notes,
    Output: check.output,
    ServiceID: check.serviceId,
    ServiceName: check.serviceName,
    ServiceTags: [...check.serviceTags],
    Type: check.type,
    Interval: "",
    Timeout: "",
    ExposedPort: 0,
    Definition: {},
    CreateIndex: check.createIndex,
    ModifyIndex: check.modifyIndex,
  };
}

export function nodeJson(node: CatalogNode, datacenter: string): JsonObject {
  return {
    ID: node.id,
    Node: node.node,
    Address: node.address,
    Datacenter: datacenter,
    TaggedAddresses: { ...node.taggedAddresses },
    Meta: { ...node.meta },
    CreateIndex: node.createIndex,
    ModifyIndex: node.modifyIndex,
  };
}

/** structs.ServiceAddress has no json tags: "Address"/"Port", whatever the API docs show. */
function taggedAddressesJson(addresses: Readonly<Record<string, ServiceAddress>>): JsonObject | undefined {
  const entries = Object.entries(addresses);
  if (entries.length === 0) return undefined;
  return Object.fromEntries(
    entries.map(([tag, { address, port }]) => [tag, { Address: address, Port: port }]),
  );
}

const PROXY_JSON: JsonObject = { Mode: "", MeshGateway: {}, Expose: {} };

/** The Service of a /v1/health/service entry (structs.NodeService). */
export function nodeServiceJson(svc: CatalogService): JsonObject {
  return {
    ID: svc.id,
    Service: svc.service,
    Tags: [...svc.tags],
    Address: svc.address,
    TaggedAddresses: taggedAddressesJson(svc.taggedAddresses),
    Meta: { ...svc.meta },
    Port: svc.port,
    Weights: { Passing: svc.weights.passing, Warning: svc.weights.warning },
    EnableTagOverride: false,
    Proxy: PROXY_JSON,
    Connect: {},
    CreateIndex: svc.createIndex,
    ModifyIndex: svc.modifyIndex,
  };
}

/** An entry of /v1/catalog/service (structs.ServiceNode). */
export function serviceNodeJson(svc: CatalogService, node: CatalogNode, datacenter: string): JsonObject {
  return {
    ID: node.id,
    Node: node.node,
    Address: node.address,
    Datacenter: datacenter,
    TaggedAddresses: { ...node.taggedAddresses },
    NodeMeta: { ...node.meta },
    ServiceKind: "",
    ServiceID: svc.id,
    ServiceName: svc.service,
    ServiceTags: [...svc.tags],
    ServiceAddress: svc.address,
    ServiceTaggedAddresses: taggedAddressesJson(svc.taggedAddresses),
    ServiceWeights: { Passing: svc.weights.passing, Warning: svc.weights.warning },
    ServiceMeta: { ...svc.meta },
    ServicePort: svc.port,
    ServiceEnableTagOverride: false,
    ServiceProxy: PROXY_JSON,
    ServiceConnect: {},
    CreateIndex: svc.createIndex,
    ModifyIndex: svc.modifyIndex,
  };
}
