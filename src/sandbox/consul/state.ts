import { Acl, type TokenPolicy } from "./acl.js";
import { Catalog } from "./catalog.js";
import { KvStore } from "./kv.js";
import { Raft } from "./raft.js";
import { Sessions } from "./sessions.js";

export interface StateOptions {
  readonly datacenter: string;
  readonly now: () => number;
  readonly timeScale: number;
  readonly tokens: Readonly<Record<string, TokenPolicy>> | undefined;
}

/** The server's own node, which answers the API: sessions default to it, agent endpoints act on it. */
export const AGENT_NODE = "consul-server-1";
export const AGENT_ADDRESS = "127.0.0.1";
export const SERVER_RPC_PORT = 8300;

/** Everything one Consul datacenter holds, behind a single-server "cluster" that always has a leader. */
export class ConsulState {
  readonly raft = new Raft();
  readonly kv: KvStore;
  readonly catalog: Catalog;
  readonly sessions: Sessions;
  readonly acl: Acl;
  readonly datacenter: string;
  readonly now: () => number;

  constructor(opts: StateOptions) {
    this.datacenter = opts.datacenter;
    this.now = opts.now;
    this.acl = new Acl(opts.tokens);
    this.kv = new KvStore(this.raft, (id) => this.sessions.exists(id));
    this.catalog = new Catalog(this.raft, (idx, node, checkId) =>
      this.sessions.checkLost(idx, node, checkId),
    );
    this.sessions = new Sessions(this.raft, this.kv, this.catalog, { now: opts.now, scale: opts.timeScale });
    this.write((idx) => {
      this.catalog.ensureNode(idx, AGENT_NODE, AGENT_ADDRESS);
      this.catalog.registerService(idx, {
        node: AGENT_NODE,
        service: "consul",
        port: SERVER_RPC_PORT,
        meta: {
          raft_version: "3",
          serf_protocol_current: "2",
          serf_protocol_max: "5",
          serf_protocol_min: "1",
        },
      });
    });
  }

  /** One Raft write: a fresh index for `apply`, then blocking queries look again. */
  write<T>(apply: (idx: number) => T): T {
    const result = apply(this.raft.next());
    this.raft.committed();
    return result;
  }

  /** Lets TTLs that ran out by the injected clock take effect before a request is served. */
  expireSessions(): void {
    if (this.sessions.sweep()) this.raft.committed();
  }

  close(): void {
    this.sessions.close();
  }
}
