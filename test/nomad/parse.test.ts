import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNomadDouble, type NomadDouble } from "../../src/sandbox/nomad/index.js";
import type { Job } from "../../src/sandbox/nomad/types.js";
import { fixture, NomadApi } from "./api.js";

let nomad: NomadDouble;
let api: NomadApi;

beforeAll(async () => {
  nomad = await startNomadDouble();
  api = new NomadApi(nomad.url);
});

afterAll(() => nomad.close());

const parse = (body: Record<string, unknown>) => api.post<Job>("/v1/jobs/parse", body);

describe("POST /v1/jobs/parse", () => {
  it("maps a two-group job file to the API Job, with defaults, durations in nanoseconds and variables", async () => {
    const { status, body: job } = await parse({ JobHCL: fixture("web.hcl"), Canonicalize: true });
    expect(status).toBe(200);
    expect(job).toMatchObject({
      ID: "web",
      Name: "web",
      Type: "service",
      Region: "global",
      Namespace: "default",
      Priority: 50,
    });
    expect(job.Constraints).toEqual([{ LTarget: "${attr.kernel.name}", RTarget: "linux", Operand: "=" }]);
    expect(job.TaskGroups?.map((g) => [g.Name, g.Count])).toEqual([
      ["front", 2],
      ["api", 1],
    ]);
    const [front, apiGroup] = job.TaskGroups ?? [];
    expect(front?.Update).toMatchObject({
      MaxParallel: 1,
      MinHealthyTime: 10e9,
      HealthyDeadline: 180e9,
      AutoRevert: true,
    });
    expect(front?.RestartPolicy).toEqual({
      Attempts: 2,
      Interval: 1800e9,
      Delay: 15e9,
      Mode: "fail",
      RenderTemplates: false,
    });
    expect(front?.Networks?.[0]?.DynamicPorts).toEqual([
      { Label: "http", Value: 0, To: 80, HostNetwork: "default" },
    ]);
    const nginx = front?.Tasks[0];
    expect(nginx?.Config).toEqual({
      image: "nginx:1.27",
      ports: ["http"],
      volumes: ["local/default.conf:/etc/nginx/conf.d/default.conf"],
    });
    expect(nginx?.Templates?.[0]).toMatchObject({
      DestPath: "local/default.conf",
      ChangeMode: "signal",
      ChangeSignal: "SIGHUP",
      Splay: 5e9,
    });
    expect(nginx?.KillTimeout).toBe(5e9);
    expect(front?.Services?.[0]?.Checks?.[0]).toMatchObject({
      Type: "http",
      Path: "/",
      Interval: 10e9,
      Timeout: 2e9,
    });
    // Run-time interpolation stays for the client to resolve.
    expect(apiGroup?.Tasks[0]?.Env).toEqual({ LISTEN: "0.0.0.0:${NOMAD_PORT_api}", LOG_LEVEL: "info" });
  });

  it("takes Variables as an HCL variables file, converting to the declared type", async () => {
    const { body: job } = await parse({
      JobHCL: fixture("web.hcl"),
      Variables: 'image = "nginx:1.28"\napi_count = "3"\n',
      Canonicalize: true,
    });
    expect(job.TaskGroups?.[0]?.Tasks[0]?.Config.image).toBe("nginx:1.28");
    expect(job.TaskGroups?.[1]?.Count).toBe(3);
  });

  it("maps a three-group job (static ports, lifecycle, job-level reschedule merged into groups)", async () => {
    const { status, body: job } = await parse({ JobHCL: fixture("chat.hcl"), Canonicalize: true });
    expect(status).toBe(200);
    expect(job.TaskGroups?.map((g) => g.Name)).toEqual(["synapse", "element", "bridge"]);
    const [synapse, , bridge] = job.TaskGroups ?? [];
    expect(synapse?.Networks?.[0]?.ReservedPorts).toEqual([
      { Label: "client", Value: 8008, To: 0, HostNetwork: "default" },
    ]);
    expect(synapse?.EphemeralDisk.SizeMB).toBe(500);
    expect(synapse?.Tasks[0]?.KillTimeout).toBe(30e9);
    expect(synapse?.ReschedulePolicy).toMatchObject({ Delay: 30e9, MaxDelay: 600e9, Unlimited: true });
    expect(bridge?.Count).toBe(1);
    expect(bridge?.Tasks[0]?.Lifecycle).toEqual({ Hook: "poststart", Sidecar: true });
  });

  it("without Canonicalize, returns only what the file sets", async () => {
    const { body } = await api.post<Record<string, unknown>>("/v1/jobs/parse", {
      JobHCL: 'job "tiny" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n    }\n  }\n}\n',
    });
    expect(body).toEqual({
      ID: "tiny",
      Name: "tiny",
      TaskGroups: [{ Name: "g", Tasks: [{ Name: "t", Driver: "docker" }] }],
    });
  });

  it("refuses file() as the API does (AllowFS false), with the HCL diagnostic", async () => {
    const answer = await parse({ JobHCL: fixture("uses-file.hcl") });
    expect(answer.status).toBe(400);
    expect(answer.headers.get("content-type")).toBe("text/plain");
    expect(answer.text).toBe(
      'Failed to parse job: input.hcl:14,23-41: Error in function call; Call to function "file" failed: filesystem function disabled.',
    );
  });

  it.each([
    ["filebase64", 'job "j" {\n  meta {\n    k = filebase64("x")\n  }\n}\n'],
    ["fileexists", 'job "j" {\n  meta {\n    k = fileexists("x") ? "a" : "b"\n  }\n}\n'],
  ])("refuses %s() too", async (name, hcl) => {
    const answer = await parse({ JobHCL: hcl });
    expect(answer.status).toBe(400);
    expect(answer.text).toContain(`Call to function "${name}" failed: filesystem function disabled.`);
  });

  it.each([
    [
      "a function it does not implement",
      'job "j" {\n  meta {\n    k = upper("x")\n  }\n}\n',
      'function "upper"',
    ],
    ["locals", 'locals {\n  a = "b"\n}\njob "j" {}\n', '"locals" blocks'],
    ["spread", 'job "j" {\n  spread {\n    attribute = "${node.datacenter}"\n  }\n}\n', '"spread" blocks'],
    [
      "an expression",
      'variable "n" {\n  default = 1\n}\njob "j" {\n  priority = var.n + 1\n}\n',
      '"var.n + 1"',
    ],
    [
      "a template directive",
      'job "j" {\n  meta {\n    k = "%{ if true }x%{ endif }"\n  }\n}\n',
      "template directives",
    ],
  ])("refuses %s with a 400 naming the construct", async (_what, hcl, named) => {
    const answer = await parse({ JobHCL: hcl });
    expect(answer.status).toBe(400);
    expect(answer.text).toMatch(/^Failed to parse job: input\.hcl:\d+,\d+-\d+: /);
    expect(answer.text).toContain(named);
  });

  it("reports HCL syntax errors with the real parser's diagnostic", async () => {
    const answer = await parse({ JobHCL: 'job "x" { group "g" {' });
    expect(answer.status).toBe(400);
    expect(answer.text).toMatch(/^Failed to parse job: input\.hcl:1,\d+-\d+: /);
  });

  it("reports unknown arguments and unset variables", async () => {
    const unknown = await parse({ JobHCL: 'job "j" {\n  colour = "blue"\n}\n' });
    expect(unknown.text).toBe(
      'Failed to parse job: input.hcl:2,3-9: Unsupported argument; An argument named "colour" is not expected here.',
    );
    const unset = await parse({ JobHCL: 'variable "image" {}\njob "j" {}\n' });
    expect(unset.status).toBe(400);
    expect(unset.text).toContain('Unset variable "image"');
  });

  it("answers 400 for an empty spec and 405 for GET", async () => {
    expect((await parse({ JobHCL: "" })).text).toBe("Job spec is empty");
    const get = await api.get("/v1/jobs/parse");
    expect([get.status, get.text]).toEqual([405, "Invalid method"]);
  });
});
