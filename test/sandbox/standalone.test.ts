/**
 * The standalone doubles: in process (the file, the control API), then as `majordome doubles` in its
 * own process with a real majordome process pointed at it through the file.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { stringify } from "yaml";
import { afterEach, describe, expect, it } from "vitest";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { startStandaloneDoubles, type DoublesFile } from "../../src/sandbox/standalone.js";
import { repoRoot } from "../support/paths.js";
import { spawnMajordome } from "../support/process.js";
import { freePort } from "../support/world.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const body = (e: ClientEvent) => String((e.content as { body?: unknown }).body ?? "");
const inReplyTo = (e: ClientEvent) =>
  (e.content as { "m.relates_to"?: { "m.in_reply_to"?: { event_id?: string } } })["m.relates_to"]?.[
    "m.in_reply_to"
  ]?.event_id;

/**
 * Waits until majordome is healthy and acting: /health also answers 200 for a standby, which is what a
 * starting instance reports before its first sync.
 */
async function waitLeading(healthUrl: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const report = (await (await fetch(healthUrl)).json()) as { healthy: boolean; role: string };
      if (report.healthy && report.role === "leader") return;
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  throw new Error(`${healthUrl} not healthy as the leader within ${timeoutMs} ms`);
}

/** A test harness's view of the doubles, through the control API only. */
class Control {
  constructor(private readonly file: DoublesFile) {}

  async call(method: "GET" | "POST", path: string, payload?: unknown, token = this.file.control.token) {
    const response = await fetch(`${this.file.control.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async say(user: string, text: string): Promise<string> {
    const { status, body } = await this.call("POST", "/_doubles/say", { user, text });
    expect(status, JSON.stringify(body)).toBe(200);
    return String(body.event_id);
  }

  async sim(control: string): Promise<{ answer: string; ok: boolean }> {
    const { body } = await this.call("POST", "/_doubles/sim", { control });
    return body as { answer: string; ok: boolean };
  }

  async messages(from = 0): Promise<{ events: ClientEvent[]; next: number }> {
    const room = encodeURIComponent(this.file.room_id);
    const { body } = await this.call("GET", `/_doubles/room/${room}/messages?from=${from}`);
    return body as { events: ClientEvent[]; next: number };
  }

  /** The bot's reply to an event, polling the room (a harness in another process has no push). */
  async replyTo(eventId: string, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let from = 0;
    while (Date.now() < deadline) {
      const { events, next } = await this.messages(from);
      const reply = events.find(
        (e) => e.sender === this.file.bot.user_id && e.type === "m.room.message" && inReplyTo(e) === eventId,
      );
      if (reply) return body(reply);
      from = next;
      await sleep(10);
    }
    throw new Error(`no reply to ${eventId} within ${timeoutMs} ms`);
  }
}

describe("standalone doubles, in process", () => {
  it("writes a file that points at live doubles, and removes it when closed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "doubles-"));
    const portsFile = join(dir, "doubles.json");
    const doubles = await startStandaloneDoubles({ portsFile, speed: 10 });
    cleanups.push(() => doubles.close());
    const file = JSON.parse(readFileSync(portsFile, "utf8")) as DoublesFile;
    expect(file).toEqual(doubles.file);

    const nodes = (await (await fetch(`${file.nomad.url}/v1/nodes`)).json()) as Array<{ Name: string }>;
    expect(nodes.map((n) => n.Name).sort()).toEqual(["node-1", "node-2", "node-3"]);
    expect((await fetch(`${file.consul.url}/v1/status/leader`)).status).toBe(200);
    const whoami = await fetch(`${file.homeserver.url}/_matrix/client/v3/account/whoami`, {
      headers: { authorization: `Bearer ${file.bot.access_token}` },
    });
    expect(((await whoami.json()) as { user_id: string }).user_id).toBe(file.bot.user_id);
    const config = file.config as { matrix: { command_rooms: string[] }; directory: { yaml_path: string } };
    expect(config.matrix.command_rooms).toEqual([file.room_id]);
    expect(readFileSync(config.directory.yaml_path, "utf8")).toMatch(/alice/);

    await doubles.close();
    expect(existsSync(portsFile)).toBe(false);
    expect(existsSync(config.directory.yaml_path)).toBe(false);
  });

  it("lets a harness speak, react, read the room and drive the cluster, with the file's token only", async () => {
    const doubles = await startStandaloneDoubles({ speed: 10 });
    cleanups.push(() => doubles.close());
    const control = new Control(doubles.file);

    expect((await control.call("POST", "/_doubles/say", { user: "bob", text: "hi" }, "wrong")).status).toBe(
      401,
    );
    const start = (await control.messages()).next;
    // carol has never been in the room: she joins, then speaks.
    const said = await control.say("carol", "hello");
    const { events } = await control.messages(start);
    expect(events.map((e) => [e.type, e.sender])).toEqual([
      ["m.room.member", "@alice:deuxfleurs.fr"],
      ["m.room.member", "@carol:deuxfleurs.fr"],
      ["m.room.message", "@carol:deuxfleurs.fr"],
    ]);
    expect(events.at(-1)?.event_id).toBe(said);

    const reaction = await control.call("POST", "/_doubles/react", {
      user: "bob",
      event_id: said,
      key: "✅",
    });
    expect(reaction.status).toBe(200);
    const withdrawn = await control.call("POST", "/_doubles/redact", {
      user: "bob",
      event_id: reaction.body.event_id,
    });
    expect(withdrawn.status).toBe(200);
    const after = (await control.messages(start)).events;
    const redacted = after.find((e) => e.event_id === reaction.body.event_id);
    expect(redacted?.content).toEqual({});

    expect(await control.sim("node down node-3")).toEqual({ answer: "node node-3 is down", ok: true });
    const nodes = (await (await fetch(`${doubles.file.nomad.url}/v1/nodes`)).json()) as Array<{
      Name: string;
      Status: string;
    }>;
    expect(nodes.find((n) => n.Name === "node-3")?.Status).toBe("down");
    expect((await control.sim("explode")).ok).toBe(false);

    expect((await control.call("POST", "/_doubles/say", { user: "bob" })).status).toBe(400);
    expect((await control.call("POST", "/_doubles/say", { user: "bob", text: "x", extra: 1 })).status).toBe(
      400,
    );
    expect((await control.call("GET", "/_doubles/room/!nowhere/messages")).status).toBe(404);
    expect((await control.call("GET", `/_doubles/room/x/messages?from=-1`)).status).toBe(400);
  });
});

describe("majordome doubles, as a process", () => {
  it("serves a majordome process; sim: controls change what it reports; SIGTERM stops it cleanly", async () => {
    const dir = await mkdtemp(join(tmpdir(), "doubles-process-"));
    const portsFile = join(dir, "doubles.json");
    const path = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`;
    const child = spawn(
      join(repoRoot(), "bin", "majordome"),
      ["doubles", "--ports-file", portsFile, "--speed", "20"],
      { env: { ...process.env, PATH: path }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    cleanups.push(async () => {
      // SIGTERM first: a SIGKILL would leave the doubles' throwaway PostgreSQL running.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    });
    // Loading majordome and starting PostgreSQL take a few seconds, more on a loaded machine.
    const deadline = Date.now() + 30_000;
    while (!existsSync(portsFile)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no doubles file: ${stderr}`);
      await sleep(10);
    }
    const file = JSON.parse(readFileSync(portsFile, "utf8")) as DoublesFile;
    expect(stdout).toContain(portsFile);
    const control = new Control(file);

    const stateDir = join(dir, "state");
    const httpPort = await freePort();
    const configPath = join(dir, "majordome.yml");
    await writeFile(
      configPath,
      stringify({
        ...file.config,
        state: { path: stateDir, fsync: false },
        http: { listen: `127.0.0.1:${httpPort}` },
        timings: { sync_timeout: "5s", outbox_retry_min: "50ms", outbox_retry_max: "1s" },
        log: { level: "warn" },
        policies_dir: join(repoRoot(), "policies"),
      }),
    );
    const majordome = spawnMajordome(configPath);
    cleanups.push(() => majordome.kill());
    await waitLeading(`http://127.0.0.1:${httpPort}/health`);

    expect(await control.replyTo(await control.say("alice", "!ping"))).toMatch(/pong/);
    const nodeRow = (table: string, name: string) =>
      table.split("\n").find((line) => line.includes(name)) ?? "";
    const before = await control.replyTo(await control.say("alice", "!nodes"));
    expect(nodeRow(before, "node-2")).toMatch(/ready/);

    expect((await control.sim("node down node-2")).ok).toBe(true);
    const after = await control.replyTo(await control.say("alice", "!nodes"));
    expect(nodeRow(after, "node-2")).toMatch(/down/);
    expect(nodeRow(after, "node-1")).toMatch(/ready/);

    expect(await majordome.kill("SIGTERM")).toBe(0);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(existsSync(portsFile)).toBe(false);
    expect(stderr).toBe("");
  }, 60_000);
});
