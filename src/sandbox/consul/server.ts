import { closeServer, listenOn } from "../listen.js";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { CheckStatus } from "./catalog.js";
import { HttpError, parseRequest, readBody, send, text, type Reply } from "./http.js";
import { dispatch, type Route } from "./router.js";
import { agentRoutes, statusRoutes } from "./routes-agent.js";
import { catalogRoutes } from "./routes-catalog.js";
import { KV_MAX_VALUE_SIZE, kvRoutes } from "./routes-kv.js";
import { sessionRoutes } from "./routes-session.js";
import { txnRoutes } from "./routes-txn.js";
import { ConsulState } from "./state.js";
import type { ConsulDouble, ConsulDoubleOptions, ServiceRegistration } from "./types.js";

/** Bodies are read whole so that an over-large one still gets its 413; this much is kept. */
const KEEP_BODY_BYTES = 4 * KV_MAX_VALUE_SIZE;

export async function startConsulDouble(opts: ConsulDoubleOptions = {}): Promise<ConsulDouble> {
  const double = new ConsulDoubleServer(opts);
  await double.listen(opts.host ?? "127.0.0.1", opts.port ?? 0);
  return double;
}

class ConsulDoubleServer implements ConsulDouble {
  private readonly state: ConsulState;
  private readonly routes: Route[];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Aborts every blocking query when the double closes. */
  private readonly closing = new AbortController();
  private down = false;
  private baseUrl = "";

  constructor(opts: ConsulDoubleOptions) {
    this.state = new ConsulState({
      datacenter: opts.datacenter ?? "dc1",
      now: opts.now ?? Date.now,
      timeScale: opts.timeScale ?? 1,
      tokens: opts.tokens,
    });
    this.routes = [
      ...kvRoutes(this.state),
      ...txnRoutes(this.state),
      ...sessionRoutes(this.state),
      ...catalogRoutes(this.state),
      ...agentRoutes(this.state),
      ...statusRoutes(),
    ];
    this.server = createServer((req, res) => void this.serve(req, res));
    // Consul's Go server keeps idle keep-alive connections open; closing them sooner than clients
    // expect would put them in the reuse-a-closing-socket race, which real deployments do not see.
    this.server.keepAliveTimeout = 0;
    this.server.on("connection", (socket) => {
      if (this.down) return void socket.resetAndDestroy();
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
  }

  get url(): string {
    return this.baseUrl;
  }

  async listen(host: string, port: number): Promise<void> {
    this.baseUrl = await listenOn(this.server, host, port);
  }

  registerService(svc: ServiceRegistration): void {
    this.state.write((idx) => this.state.catalog.registerService(idx, svc));
  }

  setCheck(checkId: string, status: CheckStatus, output?: string, node?: string): void {
    const owner = this.uniqueNode(
      "check",
      checkId,
      node,
      (n) => this.state.catalog.check(n, checkId) !== undefined,
    );
    this.state.write((idx) => this.state.catalog.setCheck(idx, owner, checkId, status, output));
  }

  deregisterService(serviceId: string, node?: string): void {
    const owner = this.uniqueNode(
      "service",
      serviceId,
      node,
      (n) => !!this.state.catalog.service(n, serviceId),
    );
    this.state.write((idx) => this.state.catalog.deregisterService(idx, owner, serviceId));
  }

  kv(key: string): string | undefined {
    const entry = this.state.kv.get(key);
    return entry && (entry.value?.toString("utf8") ?? "");
  }

  putKv(key: string, value: string, opts: { flags?: bigint } = {}): void {
    const flags = opts.flags ?? this.state.kv.get(key)?.flags ?? 0n;
    const bytes = value === "" ? null : Buffer.from(value);
    this.state.write((idx) => this.state.kv.set(idx, { key, value: bytes, flags }));
  }

  unavailable(down: boolean): void {
    this.down = down;
    if (down) for (const socket of this.sockets) socket.resetAndDestroy();
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.state.close();
    await closeServer(this.server);
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.down) return void req.socket.resetAndDestroy();
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    const signal = AbortSignal.any([gone.signal, this.closing.signal]);
    const body = await readBody(req, KEEP_BODY_BYTES);
    send(res, await this.answer(req, body, signal));
  }

  private async answer(
    req: IncomingMessage,
    body: { body: Buffer; size: number },
    signal: AbortSignal,
  ): Promise<Reply> {
    try {
      this.state.expireSessions();
      return await dispatch(this.routes, this.state.acl, parseRequest(req, body, signal));
    } catch (error) {
      if (error instanceof HttpError) return text(error.status, error.message, error.headers);
      // Anything else stands for an RPC error, which Consul's HTTP layer answers with a 500.
      return text(500, error instanceof Error ? error.message : String(error));
    }
  }

  private uniqueNode(
    kind: string,
    id: string,
    node: string | undefined,
    has: (node: string) => boolean,
  ): string {
    const nodes = node === undefined ? this.state.catalog.nodes().map((n) => n.node) : [node];
    const owners = nodes.filter(has);
    if (owners.length === 1 && owners[0] !== undefined) return owners[0];
    if (owners.length === 0)
      throw new Error(`Consul double: no ${kind} ${id}${node ? ` on node ${node}` : ""}`);
    throw new Error(`Consul double: ${kind} ${id} is on nodes ${owners.join(", ")}: say which`);
  }
}
