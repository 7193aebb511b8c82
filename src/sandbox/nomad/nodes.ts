import { rfc3339 } from "./clock.js";
import { newId } from "./objects.js";
import type { Node, NodeEvent, SimNodeSpec } from "./types.js";

/** Client nodes as a Nomad server knows them after registration (fingerprinted attributes, drivers). */

export interface Capacity {
  cpu: number;
  memory: number;
}

export const NOMAD_VERSION = "1.9.7";

export function defaultNodes(): SimNodeSpec[] {
  return [1, 2, 3].map((i) => ({ name: `node-${i}`, cpuMhz: 4000, memoryMb: 8192 }));
}

export function createNode(spec: SimNodeSpec, index: number, datacenter: string, nowNs: number): Node {
  const ip = `10.0.0.${11 + index}`;
  const cpu = spec.cpuMhz ?? 4000;
  const memory = spec.memoryMb ?? 8192;
  const time = rfc3339(nowNs);
  return {
    ID: newId(),
    Datacenter: spec.datacenter ?? datacenter,
    Name: spec.name,
    HTTPAddr: `${ip}:4646`,
    TLSEnabled: false,
    Attributes: attributes(spec.name, ip, cpu, memory),
    NodeResources: {
      Cpu: { CpuShares: cpu, TotalCpuCores: 2, ReservableCpuCores: [0, 1] },
      Memory: { MemoryMB: memory },
      Disk: { DiskMB: 100_000 },
      Networks: [
        {
          Mode: "bridge",
          Device: "",
          CIDR: "",
          IP: "",
          MBits: 0,
          DNS: null,
          ReservedPorts: null,
          DynamicPorts: null,
        },
        {
          Mode: "host",
          Device: "eth0",
          CIDR: `${ip}/32`,
          IP: ip,
          MBits: 1000,
          DNS: null,
          ReservedPorts: null,
          DynamicPorts: null,
        },
      ],
      NodeNetworks: [
        { Mode: "bridge", Device: "", MacAddress: "", Speed: 0, Addresses: null },
        {
          Mode: "host",
          Device: "eth0",
          MacAddress: "",
          Speed: 1000,
          Addresses: [{ Family: "ipv4", Alias: "default", Address: ip, ReservedPorts: "", Gateway: "" }],
        },
      ],
      Devices: null,
      MinDynamicPort: 20000,
      MaxDynamicPort: 32000,
    },
    ReservedResources: {
      Cpu: { CpuShares: 0 },
      Memory: { MemoryMB: 0 },
      Disk: { DiskMB: 0 },
      Networks: { ReservedHostPorts: "" },
    },
    Links: null,
    // What a client sets by default (client/config: connect sidecar and gateway defaults).
    Meta: {
      "connect.gateway_image": "docker.io/envoyproxy/envoy:v${NOMAD_envoy_version}",
      "connect.log_level": "info",
      "connect.proxy_concurrency": "1",
      "connect.sidecar_image": "docker.io/envoyproxy/envoy:v${NOMAD_envoy_version}",
    },
    NodeClass: spec.nodeClass ?? "",
    NodePool: "default",
    ComputedClass: "v1:1234567890123456789",
    Drain: false,
    DrainStrategy: null,
    SchedulingEligibility: "eligible",
    Status: "ready",
    StatusDescription: "",
    StatusUpdatedAt: Math.floor(nowNs / 1e9),
    Events: [nodeEvent("Node registered", "Cluster", time)],
    Drivers: {
      docker: {
        Attributes: {
          "driver.docker": "true",
          "driver.docker.version": "24.0.7",
          "driver.docker.os_type": "linux",
        },
        Detected: true,
        Healthy: true,
        HealthDescription: "Healthy",
        UpdateTime: time,
      },
      exec: {
        Attributes: { "driver.exec": "true" },
        Detected: true,
        Healthy: true,
        HealthDescription: "Healthy",
        UpdateTime: time,
      },
    },
    CSIControllerPlugins: null,
    CSINodePlugins: null,
    HostVolumes: null,
    HostNetworks: null,
    LastDrain: null,
    CreateIndex: 0,
    ModifyIndex: 0,
  };
}

function attributes(name: string, ip: string, cpu: number, memory: number): Record<string, string> {
  return {
    "cpu.arch": "amd64",
    "cpu.frequency": String(cpu / 2),
    "cpu.numcores": "2",
    "cpu.totalcompute": String(cpu),
    "driver.docker": "1",
    "driver.docker.version": "24.0.7",
    "driver.exec": "1",
    "kernel.name": "linux",
    "kernel.version": "6.1.0-28-amd64",
    "memory.totalbytes": String(memory * 1024 * 1024),
    "nomad.version": NOMAD_VERSION,
    "os.name": "debian",
    "os.version": "12",
    "unique.hostname": name,
    "unique.network.ip-address": ip,
  };
}

export const nodeEvent = (message: string, subsystem: string, timestamp: string): NodeEvent => ({
  Message: message,
  Subsystem: subsystem,
  Details: null,
  Timestamp: timestamp,
  CreateIndex: 0,
});

export function capacityOf(node: Node): Capacity {
  const resources = node.NodeResources as { Cpu?: { CpuShares?: number }; Memory?: { MemoryMB?: number } };
  return { cpu: resources.Cpu?.CpuShares ?? 0, memory: resources.Memory?.MemoryMB ?? 0 };
}

export const nodeIp = (node: Node): string => node.Attributes["unique.network.ip-address"] ?? "127.0.0.1";

/** GET /v1/nodes entries (structs.NodeListStub); attributes and resources only when asked. */
export function nodeStub(node: Node, options: { os: boolean; resources: boolean }) {
  return {
    Address: nodeIp(node),
    ID: node.ID,
    ...(options.os ? { Attributes: pickOs(node.Attributes) } : {}),
    Datacenter: node.Datacenter,
    Name: node.Name,
    NodeClass: node.NodeClass,
    NodePool: node.NodePool,
    Version: node.Attributes["nomad.version"] ?? NOMAD_VERSION,
    Drain: node.Drain,
    SchedulingEligibility: node.SchedulingEligibility,
    Status: node.Status,
    StatusDescription: node.StatusDescription,
    Drivers: node.Drivers,
    HostVolumes: node.HostVolumes,
    ...(options.resources
      ? { NodeResources: node.NodeResources, ReservedResources: node.ReservedResources }
      : {}),
    LastDrain: node.LastDrain,
    CreateIndex: node.CreateIndex,
    ModifyIndex: node.ModifyIndex,
  };
}

const pickOs = (attrs: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(attrs).filter(([k]) => k.startsWith("os.")));
