import { closeServer, listenOn } from "../listen.js";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createAdminListener } from "./admin-server.js";
import { FaultInjector, type FailMatch } from "./faults.js";
import { isBucketId, newBucketId } from "./ids.js";
import { createS3Listener } from "./s3-server.js";
import { GarageStore } from "./store.js";
import type { GarageDouble, GarageDoubleOptions } from "./types.js";

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

export async function startGarageDouble(opts: GarageDoubleOptions): Promise<GarageDouble> {
  const double = new GarageDoubleServer(opts);
  try {
    await double.listen(opts.host ?? "127.0.0.1", opts.adminPort ?? 0, opts.s3Port ?? 0);
  } catch (error) {
    await double.close();
    throw error;
  }
  return double;
}

class GarageDoubleServer implements GarageDouble {
  readonly region: string;
  private readonly store: GarageStore;
  private readonly faults = new FaultInjector();
  private readonly adminServer: Server;
  private readonly s3Server: Server;
  private down = false;
  private adminBase = "";
  private s3Base = "";

  constructor(opts: GarageDoubleOptions) {
    this.region = opts.region ?? "garage";
    this.store = new GarageStore(opts.now ?? Date.now);
    const isDown = (): boolean => this.down;
    this.adminServer = makeServer(
      createAdminListener({
        store: this.store,
        region: this.region,
        adminToken: opts.adminToken,
        apiVersion: opts.apiVersion ?? "v2",
        nodeId: newBucketId(),
        faults: this.faults,
        isDown,
      }),
    );
    this.s3Server = makeServer(
      createS3Listener({ store: this.store, region: this.region, faults: this.faults, isDown }),
    );
  }

  get adminUrl(): string {
    return this.adminBase;
  }

  get s3Url(): string {
    return this.s3Base;
  }

  async listen(host: string, adminPort: number, s3Port: number): Promise<void> {
    this.adminBase = await listenOn(this.adminServer, host, adminPort);
    this.s3Base = await listenOn(this.s3Server, host, s3Port);
  }

  failNext(match: FailMatch, count: number, status: number, code: string): void {
    this.faults.add(match, count, status, code);
  }

  bucketNames(): string[] {
    return this.store
      .allBuckets()
      .flatMap((bucket) => [...bucket.globalAliases])
      .sort();
  }

  keyIds(): string[] {
    return this.store.allKeys().map((key) => key.id);
  }

  objectCount(bucketAliasOrId: string): number {
    const id = isBucketId(bucketAliasOrId) ? bucketAliasOrId : this.store.globalAliasTarget(bucketAliasOrId);
    const bucket = id === undefined ? undefined : this.store.findBucket(id);
    if (!bucket) throw new Error(`Garage double: no bucket ${bucketAliasOrId}`);
    return bucket.objects.size;
  }

  unavailable(down: boolean): void {
    this.down = down;
  }

  async close(): Promise<void> {
    await Promise.all([closeServer(this.adminServer), closeServer(this.s3Server)]);
  }
}

function makeServer(listener: Listener): Server {
  const server = createServer(listener);
  // Clients keep connections alive; dropping idle sockets sooner than proxies do (nginx: 75 s) would
  // make them hit the reuse-a-closing-socket race, which real deployments do not.
  server.keepAliveTimeout = 75_000;
  return server;
}
