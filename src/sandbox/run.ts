import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { startMajordome, type Majordome } from "../app.js";
import { SystemClock } from "../clock.js";
import { configSchema } from "../config/schema.js";
import { createLogger } from "../log.js";
import type { Directory } from "../auth/directory.js";
import { startHomeserver, type Homeserver } from "./homeserver/index.js";
import { parseScriptLine, type ScriptLine } from "./script.js";
import { startSandboxCluster } from "./cluster.js";
import { simControls } from "./sim.js";
import { Transcript } from "./transcript.js";

export const SANDBOX_DOMAIN = "deuxfleurs.fr";

export interface SandboxOptions {
  input: Readable;
  output: Writable;
  /** Simulated time runs this many times faster than real time (sleep, timeouts, expiries). */
  speed: number;
  directory: Directory;
  policiesDir: string;
  /** Keep state here across runs; a fresh temporary directory otherwise. */
  stateDir?: string;
  /** Echo each input line (useful when input is piped). */
  echo: boolean;
  logLevel: string;
}

/** The sandbox: majordome's real pipeline over a homeserver double, with the terminal as the room. */
export async function runSandbox(opts: SandboxOptions): Promise<void> {
  const clock = new SystemClock(opts.speed);
  const homeserver = await startHomeserver({ serverName: SANDBOX_DOMAIN, now: () => clock.now() });
  const bot = homeserver.registerUser("majordome");
  const founder = homeserver.registerUser("alice").userId;
  const roomId = homeserver.createRoom(founder, { name: "ops" });
  homeserver.invite(roomId, founder, bot.userId);

  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), "majordome-sandbox-")));
  const cluster = await startSandboxCluster(clock, opts.speed);
  const config = configSchema.parse({
    matrix: {
      homeserver_url: homeserver.url,
      access_token: bot.accessToken,
      user_domain: SANDBOX_DOMAIN,
      command_rooms: [roomId],
      alert_room: roomId,
    },
    directory: { kind: "yaml" },
    state: { path: stateDir, fsync: false },
    timings: { sync_timeout: "10s" },
    log: { level: opts.logLevel },
    policies_dir: opts.policiesDir,
    ...cluster.config,
  });
  const write = (line: string) => opts.output.write(line + "\n");
  const transcript = new Transcript(bot.userId, write);
  homeserver.onEvent((room, event) => room === roomId && transcript.observe(event));

  const app = await startMajordome({
    config,
    clock,
    log: createLogger(config.log.level, "stderr"),
    directory: opts.directory,
    http: false,
    ...(cluster.postgresMissing ? { postgresUnavailable: cluster.postgresMissing } : {}),
  });
  const session = new Session(homeserver, app, transcript, roomId, clock, write, simControls(cluster, clock));
  await session.waitForMember(bot.userId);
  await app.synced();
  try {
    const lines = createInterface({ input: opts.input, terminal: false });
    for await (const line of lines) {
      if (opts.echo && line.trim() !== "") write(`> ${line}`);
      await session.play(parseScriptLine(line));
    }
    await app.pipeline.idle();
    await app.outbox.drained();
  } finally {
    await app.stop();
    await cluster.close();
    await homeserver.close();
    if (!opts.stateDir) await rm(stateDir, { recursive: true, force: true });
  }
}

class Session {
  private readonly joined = new Set<string>();
  /** Reaction event IDs by user, key and message number, so `-✅ N` can withdraw one. */
  private readonly reactions = new Map<string, string>();

  constructor(
    private readonly homeserver: Homeserver,
    private readonly app: Majordome,
    private readonly transcript: Transcript,
    private readonly roomId: string,
    private readonly clock: SystemClock,
    private readonly write: (line: string) => void,
    private readonly sim: (control: string) => Promise<string>,
  ) {}

  async play(line: ScriptLine): Promise<void> {
    switch (line.kind) {
      case "blank":
        return;
      case "invalid":
        return this.write(`! ${line.problem}`);
      case "sleep":
        return this.clock.sleep(line.seconds * 1000);
      case "sim":
        return this.write(await this.sim(line.control));
      case "say":
        return this.settle(this.homeserver.sendText(this.roomId, this.member(line.user), line.text));
      case "react":
        return this.react(line);
    }
  }

  private async react(line: Extract<ScriptLine, { kind: "react" }>): Promise<void> {
    const target = this.transcript.eventIdOf(line.message);
    if (!target)
      return this.write(`! there is no message ${line.message} (the last is ${this.transcript.count()})`);
    const userId = this.member(line.user);
    const key = `${userId} ${line.key} ${line.message}`;
    if (line.withdraw) {
      const reaction = this.reactions.get(key);
      if (!reaction) return this.write(`! ${line.user} has no ${line.key} on message ${line.message}`);
      this.reactions.delete(key);
      return this.settle(this.homeserver.redact(this.roomId, userId, reaction));
    }
    const reaction = this.homeserver.react(this.roomId, userId, target, line.key);
    this.reactions.set(key, reaction);
    return this.settle(reaction);
  }

  /** A bare name is a user of the sandbox's homeserver; anyone who speaks is invited and joins first. */
  private member(user: string): string {
    const userId = user.startsWith("@") ? user : `@${user}:${SANDBOX_DOMAIN}`;
    if (!this.joined.has(userId)) {
      this.homeserver.registerUser(userId);
      if (!this.isMember(userId)) {
        this.homeserver.invite(this.roomId, `@alice:${SANDBOX_DOMAIN}`, userId);
        this.homeserver.join(this.roomId, userId);
      }
      this.joined.add(userId);
    }
    return userId;
  }

  async waitForMember(userId: string): Promise<void> {
    while (!this.isMember(userId)) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  private isMember(userId: string): boolean {
    let membership: string | undefined;
    for (const event of this.homeserver.timeline(this.roomId)) {
      if (event.type === "m.room.member" && event.state_key === userId) {
        membership = (event.content as { membership?: string }).membership;
      }
    }
    return membership === "join";
  }

  /** Waits until majordome has handled the event and sent what it had to say about it. */
  private async settle(eventId: string): Promise<void> {
    while (!this.app.handled(eventId)) await new Promise((resolve) => setTimeout(resolve, 2));
    await this.app.outbox.drained();
  }
}
