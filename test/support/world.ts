import { mkdtemp, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { startHomeserver, type ClientEvent, type Homeserver } from "../../src/sandbox/homeserver/index.js";
import { SANDBOX_DIRECTORY } from "../../src/auth/yaml-directory.js";
import { repoRoot } from "./paths.js";
import type { Majordome } from "../../src/app.js";

export const DOMAIN = "deuxfleurs.fr";

/** A homeserver double with an ops room that majordome serves, and people who talk in it. */
export interface World {
  hs: Homeserver;
  roomId: string;
  bot: { userId: string; accessToken: string };
  /** A user (bare name or full Matrix ID) says something in the room; joins first if needed. */
  say(user: string, text: string): string;
  react(user: string, target: string, key: string): string;
  /** Resolves with the first event matching, now or later; rejects after `timeoutMs`. */
  waitFor(predicate: (event: ClientEvent) => boolean, timeoutMs?: number): Promise<ClientEvent>;
  /** The bot's messages replying to an event (m.in_reply_to), edits excluded. */
  repliesTo(eventId: string): ClientEvent[];
  botReactionsTo(eventId: string): ClientEvent[];
  close(): Promise<void>;
}

export async function startWorld(): Promise<World> {
  const hs = await startHomeserver({ serverName: DOMAIN });
  // Every event of the served room, rendered once as it happens (re-reading the timeline renders it all).
  const seen: ClientEvent[] = [];
  const waiting = new Set<(event: ClientEvent) => void>();
  let servedRoom = "";
  hs.onEvent((room, event) => {
    if (room !== servedRoom) return;
    seen.push(event);
    for (const waiter of [...waiting]) waiter(event);
  });
  const bot = hs.registerUser("majordome");
  const founder = hs.registerUser("alice").userId;
  const roomId = hs.createRoom(founder, { name: "ops" });
  servedRoom = roomId;
  hs.invite(roomId, founder, bot.userId);
  hs.join(roomId, bot.userId);
  const joined = new Set([founder, bot.userId]);
  const member = (user: string) => {
    const userId = user.startsWith("@") ? user : `@${user}:${DOMAIN}`;
    if (!joined.has(userId)) {
      hs.registerUser(userId);
      hs.invite(roomId, founder, userId);
      hs.join(roomId, userId);
      joined.add(userId);
    }
    return userId;
  };
  const relatesTo = (event: ClientEvent) =>
    (
      event.content as {
        "m.relates_to"?: { rel_type?: string; event_id?: string; "m.in_reply_to"?: { event_id?: string } };
      }
    )["m.relates_to"];

  return {
    hs,
    roomId,
    bot,
    say: (user, text) => hs.sendText(roomId, member(user), text),
    react: (user, target, key) => hs.react(roomId, member(user), target, key),
    waitFor(predicate, timeoutMs = 10_000) {
      const existing = seen.find(predicate);
      if (existing) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(new Error(`no matching event within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (event: ClientEvent) => {
          if (!predicate(event)) return;
          clearTimeout(timer);
          off();
          resolve(event);
        };
        const off = () => waiting.delete(waiter);
        waiting.add(waiter);
      });
    },
    repliesTo: (eventId) =>
      seen.filter(
        (e) =>
          e.sender === bot.userId &&
          e.type === "m.room.message" &&
          relatesTo(e)?.["m.in_reply_to"]?.event_id === eventId &&
          relatesTo(e)?.rel_type !== "m.thread",
      ),
    botReactionsTo: (eventId) =>
      hs
        .timeline(roomId)
        .filter(
          (e) => e.sender === bot.userId && e.type === "m.reaction" && relatesTo(e)?.event_id === eventId,
        ),
    close: () => hs.close(),
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Writes a config file (and a YAML directory) for a majordome process serving the world's room. */
export async function writeWorldConfig(
  world: World,
  opts: {
    stateDir?: string;
    httpPort?: number;
    timings?: Record<string, string>;
    sections?: Record<string, unknown>;
  } = {},
): Promise<{ path: string; stateDir: string; healthUrl: string }> {
  const dir = await mkdtemp(join(tmpdir(), "majordome-e2e-"));
  const stateDir = opts.stateDir ?? join(dir, "state");
  const port = opts.httpPort ?? (await freePort());
  await writeFile(join(dir, "directory.yml"), stringify(SANDBOX_DIRECTORY));
  const config = {
    matrix: {
      homeserver_url: world.hs.url,
      access_token: world.bot.accessToken,
      user_domain: DOMAIN,
      command_rooms: [world.roomId],
    },
    directory: { kind: "yaml", yaml_path: join(dir, "directory.yml") },
    state: { path: stateDir, fsync: false },
    http: { listen: `127.0.0.1:${port}` },
    timings: { sync_timeout: "5s", outbox_retry_min: "50ms", outbox_retry_max: "1s", ...opts.timings },
    log: { level: "warn" },
    policies_dir: join(repoRoot(), "policies"),
    ...opts.sections,
  };
  const path = join(dir, "config.yml");
  await writeFile(path, stringify(config));
  return { path, stateDir, healthUrl: `http://127.0.0.1:${port}/health` };
}

/**
 * Waits until majordome has handled an event (a command, a reaction) and sent what it had to say about
 * it. Throws when it has not within `timeoutMs`.
 */
export async function handledBy(app: Majordome, eventId: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!app.handled(eventId)) {
    if (Date.now() > deadline) throw new Error(`majordome did not handle ${eventId} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await app.outbox.drained();
}
