import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { z } from "zod";
import { closeServer, listenOn } from "./listen.js";
import { MatrixHttpError, type Homeserver } from "./homeserver/index.js";

/**
 * The control API of the standalone doubles, for a test harness in another process: people of the
 * homeserver talk and react in a room, the room's events are read back, and `sim:` controls drive the
 * simulated cluster. Loopback only, and every request carries the bearer token of the doubles' file.
 *
 *   POST /_doubles/say     {user, text}            → {event_id}
 *   POST /_doubles/react   {user, event_id, key}   → {event_id}
 *   POST /_doubles/redact  {user, event_id}        → {event_id}   (withdraws a reaction)
 *   POST /_doubles/sim     {control}               → {answer, ok}  (as `sim: <control>` in the sandbox)
 *   GET  /_doubles/room/<room id>/messages?from=N  → {events, next} (events N.., the next N to ask)
 *
 * `user` is a bare name (a user of the doubles' homeserver) or a full Matrix ID; it joins the room
 * the first time it speaks. `room` in the bodies defaults to the served room.
 */
export interface ControlOptions {
  homeserver: Homeserver;
  /** The room people speak in when a body names none. */
  roomId: string;
  /** A member of the room who invites newcomers. */
  inviter: string;
  sim: (control: string) => Promise<string>;
  token: string;
  host?: string;
  port?: number;
}

export interface ControlServer {
  readonly url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;
const user = z.string().min(1).max(255);
const room = z.string().min(1).max(255).optional();
const eventId = z.string().min(1).max(255);
const bodies = {
  say: z.strictObject({ user, text: z.string().max(32_768), room }),
  react: z.strictObject({ user, event_id: eventId, key: z.string().min(1).max(64), room }),
  redact: z.strictObject({ user, event_id: eventId, room }),
  sim: z.strictObject({ control: z.string().max(1024) }),
};

class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startControlServer(opts: ControlOptions): Promise<ControlServer> {
  const { homeserver } = opts;
  const joined = new Set<string>();
  const expectedToken = Buffer.from(`Bearer ${opts.token}`);

  const isMember = (roomId: string, userId: string): boolean => {
    let membership: string | undefined;
    for (const event of homeserver.timeline(roomId)) {
      if (event.type === "m.room.member" && event.state_key === userId)
        membership = (event.content as { membership?: string }).membership;
    }
    return membership === "join";
  };

  /** The user's Matrix ID, registered and joined to the room on first use. */
  const member = (roomId: string, name: string): string => {
    const userId = name.startsWith("@") ? name : `@${name}:${homeserver.serverName}`;
    const key = `${roomId} ${userId}`;
    if (joined.has(key)) return userId;
    homeserver.registerUser(userId);
    if (!isMember(roomId, userId)) {
      homeserver.invite(roomId, opts.inviter, userId);
      homeserver.join(roomId, userId);
    }
    joined.add(key);
    return userId;
  };

  const post = {
    say: (b: z.infer<typeof bodies.say>) => {
      const roomId = b.room ?? opts.roomId;
      return { event_id: homeserver.sendText(roomId, member(roomId, b.user), b.text) };
    },
    react: (b: z.infer<typeof bodies.react>) => {
      const roomId = b.room ?? opts.roomId;
      return { event_id: homeserver.react(roomId, member(roomId, b.user), b.event_id, b.key) };
    },
    redact: (b: z.infer<typeof bodies.redact>) => {
      const roomId = b.room ?? opts.roomId;
      return { event_id: homeserver.redact(roomId, member(roomId, b.user), b.event_id) };
    },
    sim: async (b: z.infer<typeof bodies.sim>) => {
      const answer = await opts.sim(b.control);
      return { answer, ok: !answer.startsWith("!") };
    },
  };

  const route = async (req: IncomingMessage, url: URL): Promise<unknown> => {
    const action = /^\/_doubles\/(say|react|redact|sim)$/.exec(url.pathname)?.[1] as
      keyof typeof bodies | undefined;
    if (action && req.method === "POST") {
      const parsed = bodies[action].safeParse(await readJson(req));
      if (!parsed.success) throw new ControlError(400, z.prettifyError(parsed.error));
      return (post[action] as (body: unknown) => unknown)(parsed.data);
    }
    const messages = /^\/_doubles\/room\/([^/]+)\/messages$/.exec(url.pathname);
    if (messages && req.method === "GET") {
      const from = Number(url.searchParams.get("from") ?? "0");
      if (!Number.isInteger(from) || from < 0) throw new ControlError(400, "from must be an index (0, 1, …)");
      const events = homeserver.timeline(decodeURIComponent(messages[1]!));
      return { events: events.slice(from), next: events.length };
    }
    throw new ControlError(404, `no ${req.method} ${url.pathname} here`);
  };

  const server = createServer((req, res) => {
    if (!authorized(req.headers.authorization, expectedToken)) {
      return reply(res, 401, { error: "a bearer token is required (see the doubles' file)" });
    }
    route(req, new URL(req.url ?? "/", "http://control"))
      .then((body) => reply(res, 200, body))
      .catch((error: unknown) => {
        // Other errors come from the doubles refusing what was asked (an invalid user ID...).
        const status = error instanceof ControlError || error instanceof MatrixHttpError ? error.status : 400;
        reply(res, status, { error: (error as Error).message });
      });
  });
  const url = await listenOn(server, opts.host ?? "127.0.0.1", opts.port ?? 0);
  return { url, close: () => closeServer(server) };
}

function authorized(header: string | undefined, expected: Buffer): boolean {
  const given = Buffer.from(header ?? "");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ControlError(413, `bodies are limited to ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new ControlError(400, "the body must be JSON");
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
