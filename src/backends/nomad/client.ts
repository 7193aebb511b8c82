import { fetch, request, type Dispatcher, type Response } from "undici";
import { httpAgent } from "../tls.js";
import type { Clock } from "../../clock.js";
import { lookupNode } from "./nodes.js";
import type {
  Allocation,
  Deployment,
  Evaluation,
  Job,
  JobListStub,
  FullAllocation,
  NodeLookup,
  NodeUpdateResponse,
  NomadNode,
  NomadStreamEvent,
  NomadStreamLine,
  PlanResponse,
  RegisterResponse,
} from "./types.js";

export interface NomadClientOptions {
  address: string;
  token?: string;
  namespace: string;
  region?: string;
  tls?: { ca_file?: string; cert_file?: string; key_file?: string; insecure_skip_verify?: boolean };
  timeoutMs: number;
  clock: Clock;
}

export type NomadErrorKind = "conflict" | "not-found" | "forbidden" | "invalid" | "unavailable" | "server";

/** A Nomad answer other than success, in words fit for the room. */
export class NomadError extends Error {
  constructor(
    message: string,
    readonly kind: NomadErrorKind,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** What Nomad says when a register's EnforceIndex does not match the job's current modify index. */
const ENFORCE_INDEX_PREFIX = "Enforcing job modify index";

export interface Blocking<T> {
  value: T;
  index: number;
}

/**
 * Nomad's HTTP API, typed for what majordome uses. Hand-written over undici: there is no maintained
 * Nomad client on npm for Node, and the API is plain JSON over HTTP (mTLS through an undici Agent).
 */
export class NomadClient {
  private readonly dispatcher: Dispatcher;

  constructor(private readonly opts: NomadClientOptions) {
    const tls = opts.tls;
    this.dispatcher = httpAgent(tls);
  }

  parse(hcl: string, variables?: Record<string, string>): Promise<Job> {
    const vars = variables && Object.entries(variables).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    return this.send("POST", "/v1/jobs/parse", {
      JobHCL: hcl,
      Canonicalize: true,
      ...(vars?.length ? { Variables: vars.join("\n") } : {}),
    });
  }

  plan(job: Job): Promise<PlanResponse> {
    return this.send("POST", `/v1/job/${enc(job.ID)}/plan`, { Job: job, Diff: true });
  }

  /** Registers exactly the planned job: refused by Nomad if the job changed since `jobModifyIndex`. */
  register(
    job: Job,
    jobModifyIndex: number,
    submission?: { source: string; variables?: string },
  ): Promise<RegisterResponse> {
    return this.send("POST", "/v1/jobs", {
      Job: job,
      EnforceIndex: true,
      JobModifyIndex: jobModifyIndex,
      ...(submission
        ? {
            Submission: {
              Source: submission.source,
              Format: "hcl2",
              VariableFlags: {},
              Variables: submission.variables ?? "",
            },
          }
        : {}),
    });
  }

  jobs(): Promise<JobListStub[]> {
    return this.send("GET", "/v1/jobs");
  }

  job(id: string): Promise<Job> {
    return this.send("GET", `/v1/job/${enc(id)}`);
  }

  versions(id: string): Promise<{ Versions: Job[] }> {
    return this.send("GET", `/v1/job/${enc(id)}/versions`);
  }

  allocations(
    jobId: string,
    opts: { index?: number; waitMs?: number } = {},
  ): Promise<Blocking<Allocation[]>> {
    return this.blocking(`/v1/job/${enc(jobId)}/allocations`, opts);
  }

  latestDeployment(jobId: string): Promise<Deployment | null> {
    return this.send("GET", `/v1/job/${enc(jobId)}/deployment`);
  }

  evaluation(id: string, opts: { index?: number; waitMs?: number } = {}): Promise<Blocking<Evaluation>> {
    return this.blocking(`/v1/evaluation/${enc(id)}`, opts);
  }

  deployment(id: string, opts: { index?: number; waitMs?: number } = {}): Promise<Blocking<Deployment>> {
    return this.blocking(`/v1/deployment/${enc(id)}`, opts);
  }

  allocation(id: string): Promise<FullAllocation> {
    return this.send("GET", `/v1/allocation/${enc(id)}`);
  }

  revert(jobId: string, version: number, priorVersion: number): Promise<RegisterResponse> {
    return this.send("POST", `/v1/job/${enc(jobId)}/revert`, {
      JobID: jobId,
      JobVersion: version,
      EnforcePriorVersion: priorVersion,
    });
  }

  scale(jobId: string, group: string, count: number, message: string): Promise<RegisterResponse> {
    return this.send("POST", `/v1/job/${enc(jobId)}/scale`, {
      Count: count,
      Target: { Group: group },
      Message: message,
    });
  }

  stop(jobId: string, purge: boolean): Promise<{ EvalID: string }> {
    return this.send("DELETE", `/v1/job/${enc(jobId)}?purge=${purge}`);
  }

  restartAllocation(allocId: string, task?: string): Promise<unknown> {
    return this.send(
      "POST",
      `/v1/client/allocation/${enc(allocId)}/restart`,
      task ? { TaskName: task } : { AllTasks: true },
    );
  }

  promote(deploymentId: string): Promise<unknown> {
    return this.send("POST", `/v1/deployment/promote/${enc(deploymentId)}`, {
      DeploymentID: deploymentId,
      All: true,
    });
  }

  failDeployment(deploymentId: string): Promise<unknown> {
    return this.send("POST", `/v1/deployment/fail/${enc(deploymentId)}`, { DeploymentID: deploymentId });
  }

  /** With `resources`, each node comes with its NodeResources and ReservedResources. */
  nodes(opts: { resources?: boolean } = {}): Promise<NomadNode[]> {
    return this.send("GET", opts.resources ? "/v1/nodes?resources=true" : "/v1/nodes");
  }

  /** Every allocation on a node, whatever its namespace, in full (resources, job). */
  nodeAllocations(nodeId: string): Promise<FullAllocation[]> {
    return this.send("GET", `/v1/node/${enc(nodeId)}/allocations`);
  }

  /** nodeAllocations as a blocking query: its index moves with any allocation of the cluster. */
  watchNodeAllocations(
    nodeId: string,
    opts: { index?: number; waitMs?: number } = {},
  ): Promise<Blocking<FullAllocation[]>> {
    return this.blocking(`/v1/node/${enc(nodeId)}/allocations`, opts);
  }

  node(id: string, opts: { index?: number; waitMs?: number } = {}): Promise<Blocking<NomadNode>> {
    return this.blocking(`/v1/node/${enc(id)}`, opts);
  }

  /** A node by exact name, exact ID or unique ID prefix; otherwise the matches, or the closest names. */
  async findNode(ref: string): Promise<NodeLookup> {
    return lookupNode(await this.nodes(), ref);
  }

  /**
   * Drains a node: Nomad moves its allocations off, no more than each group's migrate max_parallel at a
   * time, and at the deadline stops whatever is left. The node stays ineligible afterwards.
   */
  drainNode(
    nodeId: string,
    spec: { deadlineMs: number; ignoreSystemJobs: boolean },
    meta?: Record<string, string>,
  ): Promise<NodeUpdateResponse> {
    return this.send("POST", `/v1/node/${enc(nodeId)}/drain`, {
      DrainSpec: { Deadline: Math.round(spec.deadlineMs * 1e6), IgnoreSystemJobs: spec.ignoreSystemJobs },
      ...(meta ? { Meta: meta } : {}),
    });
  }

  /** Cancels a drain (a null DrainSpec); with markEligible the node takes new allocations again. */
  cancelDrain(
    nodeId: string,
    markEligible: boolean,
    meta?: Record<string, string>,
  ): Promise<NodeUpdateResponse> {
    return this.send("POST", `/v1/node/${enc(nodeId)}/drain`, {
      DrainSpec: null,
      MarkEligible: markEligible,
      ...(meta ? { Meta: meta } : {}),
    });
  }

  setEligibility(nodeId: string, eligible: boolean): Promise<NodeUpdateResponse> {
    return this.send("POST", `/v1/node/${enc(nodeId)}/eligibility`, {
      Eligibility: eligible ? "eligible" : "ineligible",
    });
  }

  /** Stops an allocation; the scheduler places a replacement (on the same node, if it has the most room). */
  stopAllocation(allocId: string): Promise<{ EvalID: string; Index: number }> {
    return this.send("POST", `/v1/allocation/${enc(allocId)}/stop`);
  }

  /** Every allocation of the namespace ("*": all), task states included. */
  listAllocations(): Promise<Blocking<Allocation[]>> {
    return this.blocking("/v1/allocations", {});
  }

  listDeployments(): Promise<Blocking<Deployment[]>> {
    return this.blocking("/v1/deployments", {});
  }

  /** nodes() and jobs() with the X-Nomad-Index of the answer. */
  listNodes(): Promise<Blocking<NomadNode[]>> {
    return this.blocking("/v1/nodes", {});
  }

  listJobs(): Promise<Blocking<JobListStub[]>> {
    return this.blocking("/v1/jobs", {});
  }

  /**
   * GET /v1/event/stream from `index` (inclusive; 0: from now on), each NDJSON line parsed, `{}`
   * heartbeats included, until the server closes the stream or `signal` aborts (the iterator then
   * throws the abort reason). `timeoutMs` bounds the wait for the response headers only: the stream
   * itself stays open, and telling a dead one from a quiet one is the caller's watchdog.
   */
  async *eventStream(
    topics: readonly string[],
    index: number,
    signal: AbortSignal,
  ): AsyncGenerator<NomadStreamLine> {
    const path = "/v1/event/stream";
    const query = [...topics.map((t) => `topic=${enc(t)}`), `index=${index}`].join("&");
    const abort = new AbortController();
    const onAbort = () => abort.abort(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    const timer = this.opts.clock.setTimeout(() => abort.abort(), this.opts.timeoutMs);
    try {
      let response: Response;
      try {
        response = await fetch(this.url(path, query), {
          dispatcher: this.dispatcher,
          signal: abort.signal,
          headers: this.opts.token ? { "X-Nomad-Token": this.opts.token } : {},
        });
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        const reason = abort.signal.aborted ? `no answer within ${this.opts.timeoutMs} ms` : causeOf(error);
        throw new NomadError(`Nomad is unreachable at ${this.opts.address}: ${reason}`, "unavailable");
      } finally {
        this.opts.clock.clearTimeout(timer);
      }
      if (!response.ok) throw nomadError(response.status, await response.text(), "GET", path);
      if (response.body === null) return;
      yield* ndjsonLines(response.body, signal, this.opts.address);
    } finally {
      signal.removeEventListener("abort", onAbort);
      abort.abort();
    }
  }

  /** The last `bytes` of a task's stdout or stderr, as text. */
  async logs(allocId: string, task: string, stream: "stdout" | "stderr", bytes = 16_384): Promise<string> {
    const query = `task=${enc(task)}&type=${stream}&origin=end&offset=${bytes}&plain=true`;
    return this.send("GET", `/v1/client/fs/logs/${enc(allocId)}?${query}`, undefined, "text");
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }

  private url(path: string, extraQuery: string): string {
    const params = [
      `namespace=${enc(this.opts.namespace)}`,
      ...(this.opts.region ? [`region=${enc(this.opts.region)}`] : []),
    ];
    if (extraQuery) params.push(extraQuery);
    return `${this.opts.address.replace(/\/$/, "")}${path}${path.includes("?") ? "&" : "?"}${params.join("&")}`;
  }

  private async blocking<T>(path: string, opts: { index?: number; waitMs?: number }): Promise<Blocking<T>> {
    const query = opts.index ? `index=${opts.index}&wait=${Math.ceil((opts.waitMs ?? 60_000) / 1000)}s` : "";
    const { body, index } = await this.request<T>(
      "GET",
      path,
      undefined,
      "json",
      query,
      (opts.waitMs ?? 0) + this.opts.timeoutMs,
    );
    return { value: body, index };
  }

  private async send<T>(
    method: string,
    path: string,
    body?: unknown,
    as: "json" | "text" = "json",
  ): Promise<T> {
    return (await this.request<T>(method, path, body, as, "", this.opts.timeoutMs)).body;
  }

  private async request<T>(
    method: string,
    path: string,
    body: unknown,
    as: "json" | "text",
    extraQuery: string,
    timeoutMs: number,
  ): Promise<{ body: T; index: number }> {
    const url = this.url(path, extraQuery);
    const abort = new AbortController();
    const timer = this.opts.clock.setTimeout(() => abort.abort(), timeoutMs);
    try {
      // undici's request(), not its fetch(): the same connections at a fraction of the CPU per call.
      const response = await request(url, {
        method: method as Dispatcher.HttpMethod,
        dispatcher: this.dispatcher,
        signal: abort.signal,
        headers: {
          ...(this.opts.token ? { "X-Nomad-Token": this.opts.token } : {}),
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.body.text();
      if (response.statusCode >= 300) throw nomadError(response.statusCode, text, method, path);
      const index = Number(response.headers["x-nomad-index"] ?? 0);
      return { body: (as === "json" ? (text ? JSON.parse(text) : null) : text) as T, index };
    } catch (error) {
      if (error instanceof NomadError) throw error;
      const reason = abort.signal.aborted ? `no answer within ${timeoutMs} ms` : causeOf(error);
      throw new NomadError(`Nomad is unreachable at ${this.opts.address}: ${reason}`, "unavailable");
    } finally {
      this.opts.clock.clearTimeout(timer);
    }
  }
}

/** The stream's body split into lines and parsed; a broken connection becomes an "unavailable" NomadError. */
async function* ndjsonLines(
  body: NonNullable<Response["body"]>,
  signal: AbortSignal,
  address: string,
): AsyncGenerator<NomadStreamLine> {
  const decoder = new TextDecoder();
  let pending = "";
  const reader = body.getReader();
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        throw new NomadError(`Nomad's event stream broke at ${address}: ${causeOf(error)}`, "unavailable");
      }
      if (chunk.done) break;
      pending += decoder.decode(chunk.value, { stream: true });
      let newline = pending.indexOf("\n");
      while (newline >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line !== "") yield parseStreamLine(line);
        newline = pending.indexOf("\n");
      }
    }
    const rest = (pending + decoder.decode()).trim();
    if (rest !== "") yield parseStreamLine(rest);
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => undefined);
  }
}

/** One NDJSON line of the event stream, as the stream hands it over (exported for the benchmark). */
export function parseStreamLine(line: string): NomadStreamLine {
  let parsed: { Index?: unknown; Events?: unknown };
  try {
    parsed = JSON.parse(line) as { Index?: unknown; Events?: unknown };
  } catch {
    throw new NomadError(`Nomad's event stream sent a line that is not JSON: ${line.slice(0, 80)}`, "server");
  }
  if (typeof parsed.Index !== "number" || !Array.isArray(parsed.Events)) return { kind: "heartbeat" };
  return { kind: "frame", index: parsed.Index, events: parsed.Events as NomadStreamEvent[] };
}

/** Nomad answers errors as plain text; a job-modify-index conflict is an HTTP 500. */
function nomadError(status: number, text: string, method: string, path: string): NomadError {
  const said = text.trim().slice(0, 500) || `HTTP ${status}`;
  if (said.includes(ENFORCE_INDEX_PREFIX)) {
    return new NomadError(`the job changed in Nomad since it was planned (${said})`, "conflict", status);
  }
  if (status === 404) return new NomadError(`not found in Nomad: ${said}`, "not-found", status);
  if (status === 403) return new NomadError(`Nomad refused the token: ${said}`, "forbidden", status);
  if (status === 400)
    return new NomadError(`Nomad refused ${method} ${path.split("?")[0]}: ${said}`, "invalid", status);
  return new NomadError(`Nomad failed (${status}): ${said}`, "server", status);
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

function enc(part: string): string {
  return encodeURIComponent(part);
}
