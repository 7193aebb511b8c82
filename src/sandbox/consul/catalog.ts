import { randomUUID } from "node:crypto";
import type { Raft } from "./raft.js";

export type CheckStatus = "passing" | "warning" | "critical";

export interface CatalogNode {
  readonly id: string;
  readonly node: string;
  readonly address: string;
  readonly taggedAddresses: Readonly<Record<string, string>>;
  readonly meta: Readonly<Record<string, string>>;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export interface ServiceAddress {
  readonly address: string;
  readonly port: number;
}

export interface CatalogService {
  readonly node: string;
  readonly id: string;
  readonly service: string;
  readonly tags: readonly string[];
  readonly address: string;
  readonly taggedAddresses: Readonly<Record<string, ServiceAddress>>;
  readonly meta: Readonly<Record<string, string>>;
  readonly port: number;
  readonly weights: { readonly passing: number; readonly warning: number };
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export interface HealthCheck {
  readonly node: string;
  readonly checkId: string;
  readonly name: string;
  readonly status: CheckStatus;
  readonly notes: string;
  readonly output: string;
  readonly serviceId: string;
  readonly serviceName: string;
  readonly serviceTags: readonly string[];
  readonly type: string;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export interface CheckInput {
  readonly checkId: string;
  readonly name: string;
  readonly status: CheckStatus;
  readonly output?: string;
  readonly notes?: string;
  /** "ttl" unless said otherwise: the double never runs a check, something outside sets its status. */
  readonly type?: string;
}

export interface ServiceInput {
  readonly node: string;
  /** The node's address, when this registration creates the node (default 127.0.0.1). */
  readonly address?: string;
  readonly service: string;
  /** The service's own address; "" (the default) means "use the node's". */
  readonly serviceAddress?: string;
  readonly id?: string;
  readonly port?: number;
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  readonly taggedAddresses?: Readonly<Record<string, ServiceAddress>>;
  readonly weights?: { readonly passing: number; readonly warning: number };
  readonly checks?: readonly CheckInput[];
}

export const SERF_CHECK = "serfHealth";

const pair = (node: string, id: string): string => `${node}\u0000${id}`;
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byCheck = (a: HealthCheck, b: HealthCheck): number =>
  compare(a.node, b.node) || compare(a.checkId, b.checkId);
const byService = (a: CatalogService, b: CatalogService): number =>
  compare(a.node, b.node) || compare(a.id, b.id);

/**
 * Nodes, services and checks (agent/consul/state/catalog.go, much reduced). A node appears with an
 * agent's serfHealth check the first time something registers on it.
 */
export class Catalog {
  private readonly nodesByName = new Map<string, CatalogNode>();
  private readonly servicesByKey = new Map<string, CatalogService>();
  private readonly checksByKey = new Map<string, HealthCheck>();

  constructor(
    private readonly raft: Raft,
    /** Called when a check goes critical or away: sessions tied to it are invalidated. */
    private readonly onCheckLost: (idx: number, node: string, checkId: string) => void,
  ) {}

  node(name: string): CatalogNode | undefined {
    return this.nodesByName.get(name);
  }

  nodes(): CatalogNode[] {
    return [...this.nodesByName.values()].sort((a, b) => compare(a.node, b.node));
  }

  check(node: string, checkId: string): HealthCheck | undefined {
    return this.checksByKey.get(pair(node, checkId));
  }

  checks(): HealthCheck[] {
    return [...this.checksByKey.values()].sort(byCheck);
  }

  service(node: string, id: string): CatalogService | undefined {
    return this.servicesByKey.get(pair(node, id));
  }

  services(): CatalogService[] {
    return [...this.servicesByKey.values()].sort(byService);
  }

  instances(name: string): CatalogService[] {
    return this.services().filter((svc) => svc.service === name);
  }

  /** The checks of one instance: its node's own checks first, then the service's. */
  instanceChecks(svc: CatalogService): HealthCheck[] {
    const onNode = this.checks().filter((check) => check.node === svc.node);
    return [
      ...onNode.filter((check) => check.serviceId === ""),
      ...onNode.filter((check) => check.serviceId === svc.id),
    ];
  }

  /**
   * X-Consul-Index of per-service reads (maxIndexForService): the service's own index while it has
   * instances, else when the last service went away, else the tables'.
   */
  serviceIndex(name: string): number {
    if (this.instances(name).length > 0) return this.raft.index(`service.${name}`);
    const extinct = this.raft.index("service-extinction");
    if (extinct > 0) return extinct;
    return Math.max(this.raft.index("nodes"), this.raft.index("services"), this.raft.index("checks"));
  }

  ensureNode(idx: number, name: string, address: string): CatalogNode {
    const existing = this.nodesByName.get(name);
    if (existing && existing.address === address) return existing;
    const node: CatalogNode = {
      id: existing?.id ?? randomUUID(),
      node: name,
      address,
      taggedAddresses: { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address },
      meta: { "consul-network-segment": "" },
      createIndex: existing?.createIndex ?? idx,
      modifyIndex: idx,
    };
    this.nodesByName.set(name, node);
    this.raft.touch("nodes", idx);
    if (!existing) {
      this.putCheck(idx, name, undefined, {
        checkId: SERF_CHECK,
        name: "Serf Health Status",
        status: "passing",
        output: "Agent alive and reachable",
        type: "",
      });
    }
    this.touchServicesOf(idx, name);
    return node;
  }

  /** Registers (or replaces) a service instance and its checks, creating the node if needed. */
  registerService(idx: number, input: ServiceInput): CatalogService {
    const node =
      this.nodesByName.get(input.node) ?? this.ensureNode(idx, input.node, input.address ?? "127.0.0.1");
    const id = input.id ?? input.service;
    const existing = this.servicesByKey.get(pair(node.node, id));
    const svc: CatalogService = {
      node: node.node,
      id,
      service: input.service,
      tags: [...(input.tags ?? [])],
      address: input.serviceAddress ?? "",
      taggedAddresses: { ...(input.taggedAddresses ?? {}) },
      meta: { ...(input.meta ?? {}) },
      port: input.port ?? 0,
      weights: input.weights ?? { passing: 1, warning: 1 },
      createIndex: existing?.createIndex ?? idx,
      modifyIndex: idx,
    };
    this.servicesByKey.set(pair(node.node, id), svc);
    this.raft.touch("services", idx);
    this.raft.touch(`service.${svc.service}`, idx);
    for (const check of input.checks ?? []) this.putCheck(idx, node.node, svc, check);
    return svc;
  }

  deregisterService(idx: number, node: string, id: string): boolean {
    const svc = this.servicesByKey.get(pair(node, id));
    if (!svc) return false;
    for (const check of this.checks()) {
      if (check.node === node && check.serviceId === id) this.removeCheck(idx, check);
    }
    this.servicesByKey.delete(pair(node, id));
    this.raft.touch("services", idx);
    this.raft.touch(`service.${svc.service}`, idx);
    if (this.instances(svc.service).length === 0) this.raft.touch("service-extinction", idx);
    return true;
  }

  /** Returns false for an unknown check. An unchanged status and output is not a write. */
  setCheck(idx: number, node: string, checkId: string, status: CheckStatus, output?: string): boolean {
    const check = this.checksByKey.get(pair(node, checkId));
    if (!check) return false;
    const next = { ...check, status, output: output ?? check.output };
    if (next.status === check.status && next.output === check.output) return true;
    this.checksByKey.set(pair(node, checkId), { ...next, modifyIndex: idx });
    this.touchCheck(idx, next);
    if (status === "critical") this.onCheckLost(idx, node, checkId);
    return true;
  }

  private putCheck(idx: number, node: string, svc: CatalogService | undefined, input: CheckInput): void {
    const existing = this.checksByKey.get(pair(node, input.checkId));
    const check: HealthCheck = {
      node,
      checkId: input.checkId,
      name: input.name,
      status: input.status,
      notes: input.notes ?? "",
      output: input.output ?? "",
      serviceId: svc?.id ?? "",
      serviceName: svc?.service ?? "",
      serviceTags: svc ? [...svc.tags] : [],
      type: input.type ?? "ttl",
      createIndex: existing?.createIndex ?? idx,
      modifyIndex: idx,
    };
    this.checksByKey.set(pair(node, check.checkId), check);
    this.touchCheck(idx, check);
    if (check.status === "critical") this.onCheckLost(idx, node, check.checkId);
  }

  private removeCheck(idx: number, check: HealthCheck): void {
    this.checksByKey.delete(pair(check.node, check.checkId));
    this.touchCheck(idx, check);
    this.onCheckLost(idx, check.node, check.checkId);
  }

  private touchCheck(idx: number, check: HealthCheck): void {
    this.raft.touch("checks", idx);
    if (check.serviceName !== "") this.raft.touch(`service.${check.serviceName}`, idx);
    else this.touchServicesOf(idx, check.node);
  }

  private touchServicesOf(idx: number, node: string): void {
    for (const svc of this.servicesByKey.values()) {
      if (svc.node === node) this.raft.touch(`service.${svc.service}`, idx);
    }
  }
}
