import { afterEach, describe, expect, it } from "vitest";
import {
  startNomadDouble,
  type NomadDouble,
  type NomadDoubleOptions,
} from "../../src/sandbox/nomad/index.js";
import { NomadApi, readLines } from "./api.js";

let nomad: NomadDouble;
let api: NomadApi;

async function start(options: NomadDoubleOptions = {}): Promise<void> {
  nomad = await startNomadDouble(options);
  api = new NomadApi(nomad.url, options.token);
}

afterEach(() => nomad.close());

interface Frame {
  Index: number;
  Events: {
    Topic: string;
    Type: string;
    Key: string;
    Namespace: string;
    FilterKeys: string[] | null;
    Index: number;
    Payload: Record<string, Record<string, unknown>>;
  }[];
}

const frames = (lines: string[]): Frame[] =>
  lines.filter((l) => l !== "{}").map((l) => JSON.parse(l) as Frame);

const stream = (query: string, headers: Record<string, string> = {}) =>
  fetch(`${nomad.url}/v1/event/stream${query}`, { headers });

describe("GET /v1/event/stream", () => {
  it("writes a {} heartbeat first, then one NDJSON frame per index, then heartbeats", async () => {
    await start({ heartbeatMs: 40 });
    await api.run("web.hcl");
    await nomad.settle();
    const response = await stream("?index=1");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    const lines = await readLines(response, (l) => l.filter((x) => x === "{}").length >= 3);
    expect(lines[0]).toBe("{}");
    const received = frames(lines);
    expect(received.length).toBeGreaterThan(5);
    for (const frame of received) {
      expect(Object.keys(frame)).toEqual(["Index", "Events"]);
      for (const event of frame.Events) {
        expect(Object.keys(event)).toEqual([
          "Topic",
          "Type",
          "Key",
          "Namespace",
          "FilterKeys",
          "Index",
          "Payload",
        ]);
        expect(event.Index).toBe(frame.Index);
      }
    }
    const indexes = received.map((f) => f.Index);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    expect(lines.slice(1 + received.length).every((l) => l === "{}")).toBe(true);
  });

  it("uses the real wire strings: NodeRegistration, JobRegistered, PlanResult for new allocations", async () => {
    await start();
    const registered = await api.run("web.hcl");
    await nomad.settle();
    const done = (l: string[]) => l.some((x) => x.includes('"Type":"DeploymentStatusUpdate"'));
    const received = frames(await readLines(await stream("?index=1"), done));
    const pairs = new Set(received.flatMap((f) => f.Events.map((e) => `${e.Topic}/${e.Type}`)));
    expect(pairs).toEqual(
      new Set([
        "Node/NodeRegistration",
        "Job/JobRegistered",
        "Evaluation/JobRegistered",
        "Allocation/PlanResult",
        "Deployment/PlanResult",
        "Job/PlanResult",
        "Evaluation/EvaluationUpdated",
        "Allocation/AllocationUpdated",
        "Deployment/AllocationUpdated",
        "Deployment/DeploymentStatusUpdate",
        "Job/DeploymentStatusUpdate",
      ]),
    );
    const jobFrame = received.find((f) => f.Index === registered.JobModifyIndex);
    expect(jobFrame?.Events.map((e) => `${e.Topic}/${e.Type}`)).toEqual([
      "Job/JobRegistered",
      "Evaluation/JobRegistered",
    ]);
    const alloc = received.flatMap((f) => f.Events).find((e) => e.Topic === "Allocation");
    expect(alloc?.FilterKeys?.[0]).toBe("web");
    expect(alloc?.Payload.Allocation?.Job).toBeNull();
    expect(received[0]?.Events[0]).toMatchObject({ Topic: "Node", Namespace: "", FilterKeys: null });
  });

  it("resumes AT the index given (inclusive), and an index older than the buffer starts at the oldest", async () => {
    await start();
    await api.run("web.hcl");
    await nomad.settle();
    const all = frames(await readLines(await stream("?index=1"), (l) => frames(l).length >= 15, 500));
    const middle = all[7];
    const resumed = frames(
      await readLines(await stream(`?index=${middle?.Index ?? 0}`), (l) => frames(l).length >= 1),
    );
    expect(resumed[0]).toEqual(middle);

    // Push the first entries out of the ~100-entry buffer.
    for (let i = 0; i < 6; i++) {
      await api.run("chat.hcl", undefined);
      await api.request("DELETE", "/v1/job/chat?purge=true");
      await nomad.settle();
    }
    const oldest = frames(await readLines(await stream("?index=1"), (l) => frames(l).length >= 1));
    expect(oldest[0]?.Index).toBeGreaterThan(1);
    const everything = frames(
      await readLines(await stream("?index=1"), (l) => frames(l).length >= 100, 1000),
    );
    expect(everything.length).toBe(100);
  });

  it("filters by topic and key (FilterKeys match too)", async () => {
    await start();
    await api.run("web.hcl");
    await api.run("chat.hcl");
    await nomad.settle();
    const jobs = frames(
      await readLines(await stream("?index=1&topic=Job:web"), (l) => frames(l).length >= 3, 300),
    );
    expect(jobs.flatMap((f) => f.Events).every((e) => e.Topic === "Job" && e.Key === "web")).toBe(true);
    const allocs = frames(
      await readLines(await stream("?index=1&topic=Allocation:chat"), (l) => frames(l).length >= 3, 300),
    );
    const events = allocs.flatMap((f) => f.Events);
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.Topic === "Allocation" && e.FilterKeys?.[0] === "chat")).toBe(true);
    const bad = await stream("?topic=Job:a:b");
    expect([bad.status, await bad.text()]).toEqual([
      400,
      "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: Job:a:b",
    ]);
  });

  it("delivers new events live", async () => {
    await start();
    const response = await stream("?topic=Job");
    const pending = readLines(response, (l) => frames(l).length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await api.run("web.hcl");
    const live = frames(await pending);
    expect(live[0]?.Events[0]).toMatchObject({ Topic: "Job", Type: "JobRegistered", Key: "web" });
  });

  it("with ACLs, a missing or bad token gets 200 and a stream closed before any line", async () => {
    await start({ token: "s3cr3t" });
    const refused = await stream("?index=1");
    expect(refused.status).toBe(200);
    expect(await refused.text()).toBe("");
    const wrong = await stream("?index=1", { "X-Nomad-Token": "nope" });
    expect(await wrong.text()).toBe("");
    const allowed = await stream("?index=1", { "X-Nomad-Token": "s3cr3t" });
    const lines = await readLines(allowed, (l) => frames(l).length >= 1);
    expect(lines[0]).toBe("{}");
    expect(frames(lines)[0]?.Events[0]?.Type).toBe("NodeRegistration");
  });
});

describe("blocking queries", () => {
  it("answer when the index moves past ?index=, else after ?wait=", async () => {
    await start();
    const first = await api.get<unknown[]>("/v1/jobs");
    const index = Number(first.headers.get("x-nomad-index"));
    expect(first.body).toEqual([]);

    const started = Date.now();
    const timedOut = await api.get<unknown[]>(`/v1/jobs?index=${index}&wait=100ms`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(timedOut.headers.get("x-nomad-index")).toBe(String(index));

    // A watch on a job that does not exist yet: 404 with the index, then it blocks until it appears.
    const absent = await api.get("/v1/job/web");
    expect([absent.status, absent.text, absent.headers.get("x-nomad-index")]).toEqual([
      404,
      "job not found",
      String(index),
    ]);
    const appearing = api.get<{ ID: string }>(`/v1/job/web?index=${index}&wait=10s`);
    const waiting = api.get<{ ID: string }[]>(`/v1/jobs?index=${index}&wait=10s`);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await api.run("web.hcl");
    const changed = await waiting;
    expect(Number(changed.headers.get("x-nomad-index"))).toBeGreaterThan(index);
    expect(changed.body.map((j) => j.ID)).toEqual(["web"]);
    expect(changed.headers.get("x-nomad-knownleader")).toBe("true");
    expect((await appearing).body.ID).toBe("web");

    await nomad.settle();
    const allocs = await api.get<{ ID: string; ClientStatus: string }[]>("/v1/job/web/allocations");
    const allocIndex = Number(allocs.headers.get("x-nomad-index"));
    const watchAllocs = api.get(`/v1/job/web/allocations?index=${allocIndex}&wait=10s`);
    await api.post(`/v1/allocation/${allocs.body[0]?.ID ?? ""}/stop`);
    expect(Number((await watchAllocs).headers.get("x-nomad-index"))).toBeGreaterThan(allocIndex);
    expect((await api.get("/v1/jobs?index=abc")).text).toBe("Invalid index");
    expect((await api.get("/v1/jobs?index=1&wait=soon")).text).toBe("Invalid wait time");
  });
});
