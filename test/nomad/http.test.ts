import { afterEach, describe, expect, it } from "vitest";
import {
  startNomadDouble,
  type NomadDouble,
  type NomadDoubleOptions,
} from "../../src/sandbox/nomad/index.js";
import { NomadApi } from "./api.js";

let nomad: NomadDouble;

async function start(options: NomadDoubleOptions = {}): Promise<NomadApi> {
  nomad = await startNomadDouble(options);
  return new NomadApi(nomad.url, options.token);
}

afterEach(() => nomad.close());

describe("the HTTP layer", () => {
  it("with a token set, needs X-Nomad-Token everywhere: 403 Permission denied (text/plain) otherwise", async () => {
    const api = await start({ token: "s3cr3t" });
    const anonymous = new NomadApi(nomad.url);
    for (const path of ["/v1/jobs", "/v1/nodes", "/v1/allocations", "/v1/deployments", "/v1/evaluations"]) {
      const refused = await anonymous.get(path);
      expect([refused.status, refused.text, refused.headers.get("content-type")]).toEqual([
        403,
        "Permission denied",
        "text/plain",
      ]);
    }
    expect((await new NomadApi(nomad.url, "wrong").get("/v1/jobs")).status).toBe(403);
    expect((await anonymous.post("/v1/jobs/parse", { JobHCL: 'job "x" {}' })).status).toBe(403);
    const allowed = await api.get("/v1/jobs");
    expect(allowed.status).toBe(200);
    const bearer = await fetch(`${nomad.url}/v1/nodes`, { headers: { Authorization: "Bearer s3cr3t" } });
    expect(bearer.status).toBe(200);
  });

  it("answers reads with X-Nomad-Index and JSON, errors as plain text with Nomad's status codes", async () => {
    const api = await start();
    const nodes = await api.get("/v1/nodes");
    expect(nodes.headers.get("content-type")).toBe("application/json");
    expect(Number(nodes.headers.get("x-nomad-index"))).toBeGreaterThan(0);
    expect(nodes.headers.get("x-nomad-lastcontact")).toBe("0");

    const missing = await api.get("/v1/job/nope");
    expect([missing.status, missing.text, missing.headers.get("content-type")]).toEqual([
      404,
      "job not found",
      "text/plain",
    ]);
    expect((await api.get("/v1/allocation/nope")).text).toBe("alloc not found");
    expect((await api.get("/v1/evaluation/nope")).text).toBe("eval not found");
    expect((await api.get("/v1/deployment/nope")).text).toBe("deployment not found");
    expect((await api.request("PATCH", "/v1/jobs")).text).toBe("Invalid method");
    expect((await api.get("/v1/nothing-here")).status).toBe(404);
    expect((await api.post("/v1/jobs")).text).toBe("Request body is empty");
    expect((await api.request("POST", "/v1/jobs", "not json")).status).toBe(400);
    expect((await api.post("/v1/jobs", {})).text).toBe("Job must be specified");
    expect((await api.post("/v1/job/web", { Job: { ID: "other" } })).text).toBe("Job ID does not match name");
    const wrongType = await api.post("/v1/jobs", { Job: { ID: "x", Priority: "high" } });
    expect([wrongType.status, wrongType.text]).toEqual([
      400,
      "json: cannot unmarshal string into Go struct field Job.Job.Priority of type int",
    ]);
  });

  it("validates jobs like the server (multierror text, 500)", async () => {
    const api = await start();
    const invalid = await api.post("/v1/jobs", {
      Job: { ID: "broken", TaskGroups: [{ Name: "g", Tasks: [{ Name: "t" }] }] },
    });
    expect(invalid.status).toBe(500);
    expect(invalid.text).toBe(
      "1 error occurred:\n\t* Task group g validation failed: Task t validation failed: Missing task driver\n\n",
    );
  });

  it("takes ?region= (other regions have no path) and ?namespace=", async () => {
    const api = await start({ region: "fr-par" });
    expect((await api.get("/v1/jobs?region=fr-par")).status).toBe(200);
    const other = await api.get("/v1/jobs?region=us");
    expect([other.status, other.text]).toEqual([500, "No path to region"]);
    await api.run("web.hcl");
    const job = await api.get<{ Region: string; Namespace: string }>("/v1/job/web");
    expect(job.body).toMatchObject({ Region: "fr-par", Namespace: "default" });
    expect((await api.get<unknown[]>("/v1/jobs?namespace=*")).body).toHaveLength(1);
    expect((await api.get<unknown[]>("/v1/jobs?namespace=apps")).body).toHaveLength(0);
    expect((await api.get("/v1/job/web?namespace=apps")).status).toBe(404);
    expect((await api.get<string[]>("/v1/regions")).body).toEqual(["fr-par"]);
  });

  it("closes every socket and timer on close(), even with open streams and blocking queries", async () => {
    const api = await start({ stepMs: 5 });
    const streamResponse = await fetch(`${nomad.url}/v1/event/stream`);
    const blocked = api.get("/v1/jobs?index=999&wait=60s").catch(() => undefined);
    await api.run("chat.hcl");
    await nomad.close();
    await blocked;
    await streamResponse.body?.cancel().catch(() => undefined);
    nomad = await startNomadDouble();
  });
});
