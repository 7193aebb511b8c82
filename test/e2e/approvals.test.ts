/**
 * Authorization and approval by reaction, end to end: majordome (in process, on a ManualClock) reads
 * people's groups from a real slapd, talks through the homeserver double, and runs a test-only command
 * whose policy needs approval.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { allCommands } from "../../handlers/index.js";
import { startMajordome, type Majordome } from "../../src/app.js";
import { REQUEST_CONTENT_KEY, type ApprovalRequest } from "../../src/auth/approvals.js";
import { LdapDirectory } from "../../src/auth/ldap-directory.js";
import { Policies, parsePolicyFile } from "../../src/auth/policy.js";
import { ManualClock } from "../../src/clock.js";
import { message } from "../../src/chat/message.js";
import { defineCommand } from "../../src/commands/declare.js";
import { name } from "../../src/commands/types.js";
import { configSchema } from "../../src/config/schema.js";
import { FileStateStore } from "../../src/state/file-store.js";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { directoryOptions, startSlapd, type Slapd } from "../support/slapd.js";
import { DOMAIN, handledBy, startWorld, type World } from "../support/world.js";

const POLICY = `
rules:
  - match: [help, whoami, policy, ping]
    allow: [anyone]
  - match: [look]
    allow: [asso_deuxfleurs, admin]
  - match: [audit]
    allow: [admin]
  - match: ["demo stop"]
    allow: [admin]
    approval: { approvers: 1, from: [admin], expires: 15m }
    break_glass: [admin]
  - match: ["demo drop"]
    allow: [admin]
    approval: { approvers: 2, from: [admin], expires: 15m }
  - match: ["demo stop --purge"]
    allow: [admin]
    approval: { approvers: 2, from: [admin], expires: 15m }
`;

/** What the test commands did, and the fact their plans depend on. */
const ran: string[] = [];
let currentVersion = 1;
const job = name("job", /^[a-z][a-z0-9-]*$/, "a job name");
const testCommands = [
  defineCommand<{ job: string; purge?: boolean }>({
    name: "demo stop",
    summary: "Stop a job (test)",
    args: [{ name: "job", type: job }],
    flags: { purge: { summary: "purge", policy: "demo stop --purge" } },
    async plan(_ctx, { job, purge }) {
      return {
        summary: `Will stop ${job} at version ${currentVersion}${purge ? " and purge it" : ""}.`,
        facts: { job, purge, version: currentVersion },
      };
    },
    async run(_ctx, { job }) {
      ran.push(`stop ${job}`);
      return message(`stopped ${job}`);
    },
  }),
  defineCommand<{ job: string }>({
    name: "demo drop",
    summary: "Drop (test)",
    args: [{ name: "job", type: job }],
    async run(_ctx, { job }) {
      ran.push(`drop ${job}`);
    },
  }),
  defineCommand({
    name: "look",
    summary: "Read-only (test)",
    async run() {
      ran.push("look");
    },
  }),
];

let slapd: Slapd;
beforeAll(async () => {
  slapd = await startSlapd();
});
afterAll(async () => {
  await slapd.stop();
});

interface Setup {
  w: World;
  app: Majordome;
  clock: ManualClock;
  stateDir: string;
  restart(): Promise<Majordome>;
}
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
beforeEach(() => {
  ran.length = 0;
  currentVersion = 1;
});

async function setup(): Promise<Setup> {
  const w = await startWorld();
  cleanups.push(() => w.close());
  const clock = new ManualClock(Date.now());
  const stateDir = await mkdtemp(join(tmpdir(), "majordome-approvals-"));
  const start = async () => {
    const config = configSchema.parse({
      matrix: {
        homeserver_url: w.hs.url,
        access_token: w.bot.accessToken,
        user_domain: DOMAIN,
        command_rooms: [w.roomId],
      },
      state: { path: stateDir, fsync: false },
      timings: { sync_timeout: "2s" },
    });
    const directory = new LdapDirectory({ ...directoryOptions(slapd, clock), timeoutMs: 1000 });
    const app = await startMajordome({
      config,
      clock,
      log: pino({ level: "silent" }),
      directory,
      policies: new Policies(parsePolicyFile(POLICY, "test-policy.yml")),
      commands: [...allCommands, ...testCommands],
      http: false,
    });
    await app.synced();
    return app;
  };
  let app = await start();
  const setupObject: Setup = {
    w,
    clock,
    stateDir,
    get app() {
      return app;
    },
    async restart() {
      await app.stop();
      app = await start();
      return app;
    },
  };
  cleanups.push(() => app.stop());
  return setupObject;
}

const bodyOf = (e: ClientEvent) => String((e.content as { body?: unknown }).body ?? "");
const rel = (e: ClientEvent) =>
  (
    e.content as {
      "m.relates_to"?: { rel_type?: string; event_id?: string; "m.in_reply_to"?: { event_id?: string } };
    }
  )["m.relates_to"];

/** The bot's current text of a message: its latest edit, or the original. */
function currentText(w: World, eventId: string): string {
  const edits = w.hs
    .timeline(w.roomId)
    .filter(
      (e) => e.sender === w.bot.userId && rel(e)?.rel_type === "m.replace" && rel(e)?.event_id === eventId,
    );
  const last = edits.at(-1);
  return last
    ? String((last.content as { "m.new_content": { body: string } })["m.new_content"].body)
    : bodyOf(w.hs.getEvent(w.roomId, eventId)!);
}

/** Retries an assertion until it holds (for work a timer started in the background), for up to 5 s. */
async function eventually(assertion: () => void): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return assertion();
    } catch (error) {
      if (i >= 500) throw error;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

async function settle(s: Setup, eventId: string): Promise<void> {
  await handledBy(s.app, eventId);
}

async function ask(s: Setup, user: string, line: string): Promise<{ command: string; reply: ClientEvent }> {
  const command = s.w.say(user, line);
  await settle(s, command);
  const [reply] = s.w.repliesTo(command);
  expect(reply, `a reply to ${line}`).toBeDefined();
  return { command, reply: reply! };
}

async function react(s: Setup, user: string, target: string, key: string): Promise<string> {
  const id = s.w.react(user, target, key);
  await settle(s, id);
  return id;
}

function threadOf(s: Setup, root: string): string[] {
  return s.w.hs
    .timeline(s.w.roomId)
    .filter(
      (e) => e.sender === s.w.bot.userId && rel(e)?.rel_type === "m.thread" && rel(e)?.event_id === root,
    )
    .map(bodyOf);
}

describe("authorization matrix (real slapd)", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["alice", "!look", /Done/],
    ["carol", "!look", /Done/],
    ["dave", "!look", /⛔ look is for members of asso_deuxfleurs or admin/],
    ["@carol:evil.example", "!look", /⛔ @carol:evil\.example is not a user of deuxfleurs\.fr/],
    ["@alice:evil.example", "!demo stop web", /⛔ @alice:evil\.example is not a user/],
    ["carol", "!demo stop web", /⛔ demo stop is for members of admin/],
    ["dave", "!demo stop web", /⛔/],
    ["alice", "!demo stop web", /Approval needed/],
    ["alice", "!demo stop web --purge", /Needs 2 ✅/],
    ["nobody-here", "!look", /⛔ no directory entry for nobody-here/],
    ["dave", "!whoami", /Groups:\*\* none/],
  ];
  it.each(cases)("%s: %s", async (user, line, expected) => {
    const s = await setup();
    const { reply } = await ask(s, user, line);
    expect(bodyOf(reply)).toMatch(expected);
    expect(ran).toEqual(/Done/.test(expected.source) ? ["look"] : []);
  });

  it("!help lists only what the asker may run; !whoami shows rights per family", async () => {
    const s = await setup();
    const carolHelp = bodyOf((await ask(s, "carol", "!help")).reply);
    expect(carolHelp).toContain("`!look`");
    expect(carolHelp).not.toContain("`!demo stop`");
    const aliceHelp = bodyOf((await ask(s, "alice", "!help")).reply);
    expect(aliceHelp).toMatch(/`!demo stop` \| Stop a job \(test\) 🔐 \(needs approval\)/);
    const whoami = bodyOf((await ask(s, "carol", "!whoami")).reply);
    expect(whoami).toMatch(/\| demo \| — \| — \| `demo stop`, `demo drop` \|/);
    expect(whoami).toContain("`asso_deuxfleurs`");
  });

  it("!policy explains the rule and the asker's standing", async () => {
    const s = await setup();
    const text = bodyOf((await ask(s, "carol", "!policy demo stop")).reply);
    expect(text).toMatch(
      /`demo stop`: rule `demo stop` in `test-policy.yml rule 4`: for members of admin; needs 1 approval from members of admin other than the requester/,
    );
    expect(text).toMatch(/`demo stop --purge`: .*needs 2 approvals/);
    expect(text).toMatch(/For you:\*\* denied/);
  });

  it("user names built to inject LDAP filters are nobody", async () => {
    const s = await setup();
    for (const user of ["@*)(cn=*:deuxfleurs.fr", "@alice)(|(cn=*:deuxfleurs.fr", "@*:deuxfleurs.fr"]) {
      const reply = bodyOf((await ask(s, user, "!look")).reply);
      expect(reply).toMatch(/⛔ .* is not a user of deuxfleurs\.fr/);
    }
    expect(ran).toEqual([]);
  });
});

/** Stops majordome and changes its only approval request in the store, as a kill would have left it. */
async function editRequest(s: Setup, change: (request: ApprovalRequest) => void): Promise<string> {
  await s.app.stop();
  const store = await FileStateStore.open(s.stateDir);
  try {
    const [entry] = await store.list<ApprovalRequest>("approvals/");
    change(entry!.value);
    await store.set(entry!.key, entry!.value);
    return entry!.value.id;
  } finally {
    await store.close();
  }
}

describe("approval by reaction", () => {
  it("posts a request with the plan, pre-reacts ✅ ❌, and runs nothing yet", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    expect(bodyOf(reply)).toMatch(/@alice:deuxfleurs\.fr asked: `!demo stop web`/);
    expect(bodyOf(reply)).toMatch(/Will stop web at version 1\./);
    expect(bodyOf(reply)).toMatch(/Needs 1 ✅ from members of admin \(not the requester\)/);
    expect(bodyOf(reply)).toMatch(/Expires .* UTC \(15 minutes after the request\)/);
    expect((reply.content as Record<string, { id: string }>)[REQUEST_CONTENT_KEY]?.id).toMatch(/^req-/);
    expect(
      s.w
        .botReactionsTo(reply.event_id)
        .map((r) => (r.content as { "m.relates_to": { key: string } })["m.relates_to"].key)
        .sort(),
    ).toEqual(["✅", "❌"].sort());
    expect(ran).toEqual([]);
  });

  it("the requester's own ✅ and a non-admin's ✅ do not count (said in the thread); another admin's does, once", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    await react(s, "alice", reply.event_id, "✅");
    await react(s, "carol", reply.event_id, "✅");
    await react(s, "@bob:evil.example", reply.event_id, "✅");
    expect(ran).toEqual([]);
    const thread = threadOf(s, reply.event_id);
    expect(thread).toContain("@alice:deuxfleurs.fr's ✅ does not count: nobody approves their own request.");
    expect(thread).toContain("@carol:deuxfleurs.fr's ✅ does not count: approvals are for members of admin.");
    expect(
      thread.some((t) => /@bob:evil\.example's ✅ does not count: .*not a user of deuxfleurs\.fr/.test(t)),
    ).toBe(true);

    await react(s, "bob", reply.event_id, "✅️"); // with a variation selector: the same ✅
    expect(ran).toEqual(["stop web"]);
    expect(currentText(s.w, reply.event_id)).toMatch(
      /^✅ \*\*Done\*\*.*\n[\s\S]*Approved by @bob:deuxfleurs\.fr; done/,
    );
    expect(threadOf(s, reply.event_id)).toContain("stopped web");

    await react(s, "bob", reply.event_id, "✅"); // a second ✅ by the same person, after the fact
    expect(ran).toEqual(["stop web"]);
    expect(threadOf(s, reply.event_id).at(-1)).toMatch(/came after the request was done; it changes nothing/);
  });

  it("❌ from an eligible person rejects; nothing runs", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    await react(s, "bob", reply.event_id, "❌");
    await react(s, "bob", reply.event_id, "✅");
    expect(ran).toEqual([]);
    expect(currentText(s.w, reply.event_id)).toMatch(
      /^🚫 \*\*Rejected\*\*[\s\S]*Rejected by @bob:deuxfleurs\.fr/,
    );
  });

  it("a withdrawn ✅ no longer counts toward a quorum of two", async () => {
    const s = await setup();
    await slapd.addUser("erin", ["admin"]);
    try {
      const { reply } = await ask(s, "alice", "!demo drop db1");
      const bobVote = await react(s, "bob", reply.event_id, "✅");
      expect(currentText(s.w, reply.event_id)).toMatch(/1 of 2 approvals so far/);
      const redaction = s.w.hs.redact(s.w.roomId, "@bob:deuxfleurs.fr", bobVote);
      await settle(s, redaction);
      expect(currentText(s.w, reply.event_id)).toMatch(/0 of 2 approvals so far/);
      await react(s, "erin", reply.event_id, "✅");
      expect(ran).toEqual([]);
      await react(s, "bob", reply.event_id, "✅");
      expect(ran).toEqual(["drop db1"]);
    } finally {
      await slapd.deleteUser("erin");
    }
  });

  it("two reactions by the same person (✅ and ✅️) count once toward a quorum of two", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo drop db3");
    await react(s, "bob", reply.event_id, "✅");
    await react(s, "bob", reply.event_id, "✅️");
    expect(ran).toEqual([]);
    expect(currentText(s.w, reply.event_id)).toMatch(/1 of 2 approvals so far/);
  });

  it("expires on the clock; a reaction after expiry is too late", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    await s.clock.advance(15 * 60_000 - 1);
    expect(currentText(s.w, reply.event_id)).toMatch(/^🔐 \*\*Approval needed/);
    await s.clock.advance(1);
    await eventually(() =>
      expect(currentText(s.w, reply.event_id)).toMatch(
        /^⌛ \*\*Expired\*\*[\s\S]*Expired with 0 of 1 approvals; nothing was done/,
      ),
    );
    await react(s, "bob", reply.event_id, "✅");
    expect(ran).toEqual([]);
    expect(threadOf(s, reply.event_id).at(-1)).toMatch(/came after the request was expired/);
  });

  it("someone removed from the group after reacting no longer counts at quorum", async () => {
    const s = await setup();
    await slapd.addUser("frank", ["admin"]);
    try {
      const { reply } = await ask(s, "alice", "!demo drop db2");
      await react(s, "frank", reply.event_id, "✅"); // eligible now (and cached)
      await slapd.removeFromGroup("frank", "admin");
      await react(s, "bob", reply.event_id, "✅"); // quorum: fresh look-ups
      expect(ran).toEqual([]);
      expect(threadOf(s, reply.event_id)).toContain(
        "@frank:deuxfleurs.fr's ✅ no longer counts: approvals are for members of admin.",
      );
      expect(currentText(s.w, reply.event_id)).toMatch(/1 of 2 approvals so far/);
    } finally {
      await slapd.deleteUser("frank");
    }
  });

  it("survives a restart: a ✅ given while majordome was down is counted from the relations", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    await s.app.stop();
    s.w.react("bob", reply.event_id, "✅"); // while down
    await s.restart();
    await s.app.pipeline.idle();
    await s.app.outbox.drained();
    expect(ran).toEqual(["stop web"]);
    await s.restart(); // and once more: it does not run again
    await s.app.pipeline.idle();
    expect(ran).toEqual(["stop web"]);
  });

  it("killed after the run, before the request was finished: the restart shows the outcome, runs nothing", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    await react(s, "bob", reply.event_id, "✅");
    expect(ran).toEqual(["stop web"]);
    const id = await editRequest(s, (r) => {
      r.status = "approved";
      delete r.outcome;
    });
    await s.restart();
    await s.app.pipeline.idle();
    expect((await s.app.pipeline.approvals.load(id))?.status).toBe("done");
    expect(ran).toEqual(["stop web"]);
  });

  it("killed once decided, before its message showed it: the restart shows it, runs nothing", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    await react(s, "bob", reply.event_id, "✅");
    const id = await editRequest(s, (r) => {
      r.shown = false;
    });
    await s.restart();
    await s.app.pipeline.idle();
    expect((await s.app.pipeline.approvals.load(id))?.shown).toBe(true);
    expect(ran).toEqual(["stop web"]);
  });

  it("killed once approved, before the run began: the restart runs it, once", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    const id = await editRequest(s, (r) => {
      r.status = "approved";
      r.votes = { $vote: { sender: "@bob:deuxfleurs.fr", vote: "approve" } };
    });
    await s.restart();
    await s.app.pipeline.idle();
    await s.app.outbox.drained();
    expect(ran).toEqual(["stop web"]);
    expect((await s.app.pipeline.approvals.load(id))?.status).toBe("done");
    await eventually(() => expect(currentText(s.w, reply.event_id)).toMatch(/\*\*Done\*\*/));
    await s.restart();
    await s.app.pipeline.idle();
    expect(ran).toEqual(["stop web"]);
  });

  it("killed after a ✅ was saved, before the quorum was evaluated: the restart evaluates it", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    await s.app.stop();
    const vote = s.w.react("bob", reply.event_id, "✅");
    await editRequest(s, (r) => {
      r.votes = { [vote]: { sender: "@bob:deuxfleurs.fr", vote: "approve" } };
    });
    await s.restart();
    await s.app.pipeline.idle();
    await s.app.outbox.drained();
    expect(ran).toEqual(["stop web"]);
    await eventually(() => expect(currentText(s.w, reply.event_id)).toMatch(/\*\*Done\*\*/));
  });

  it("directory down at quorum: nothing is done, the request stays open, and a later ✅ runs it", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    await slapd.kill();
    let vote: string;
    try {
      vote = await react(s, "bob", reply.event_id, "✅");
      expect(ran).toEqual([]);
      expect(threadOf(s, reply.event_id).at(-1)).toMatch(
        /⛔ directory unreachable.*nothing was done\. The request stays open/,
      );
    } finally {
      await slapd.restart();
    }
    await settle(s, s.w.hs.redact(s.w.roomId, "@bob:deuxfleurs.fr", vote));
    await react(s, "bob", reply.event_id, "✅");
    expect(ran).toEqual(["stop web"]);
  });

  it("a plan that changed since the request does not run; a new request is offered", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", "!demo stop web");
    currentVersion = 2;
    await react(s, "bob", reply.event_id, "✅");
    expect(ran).toEqual([]);
    expect(currentText(s.w, reply.event_id)).toMatch(
      /Not run: the plan changed since it was approved; a new request follows/,
    );
    const fresh = s.w.hs
      .timeline(s.w.roomId)
      .filter(
        (e) =>
          e.sender === s.w.bot.userId && /Approval needed/.test(bodyOf(e)) && /version 2/.test(bodyOf(e)),
      );
    expect(fresh).toHaveLength(1);
    await react(s, "bob", fresh[0]!.event_id, "✅");
    expect(ran).toEqual(["stop web"]);
  });

  it("break-glass runs at once for the allowed group, is announced and audited for review", async () => {
    const s = await setup();
    const { reply } = await ask(s, "alice", '!demo stop web --break-glass "site down, nobody around"');
    expect(ran).toEqual(["stop web"]);
    expect(bodyOf(reply)).toBe("stopped web");
    const announce = s.w.hs.timeline(s.w.roomId).find((e) => /Break-glass/.test(bodyOf(e)));
    expect(bodyOf(announce!)).toMatch(
      /@alice:deuxfleurs\.fr ran `!demo stop web --break-glass .*` without approval\. Reason: site down, nobody around/,
    );
    const audit = bodyOf((await ask(s, "alice", "!audit 5")).reply);
    expect(audit).toMatch(/🚨 break-glass/);

    const carol = bodyOf((await ask(s, "carol", '!demo stop web --break-glass "me too"')).reply);
    expect(carol).toMatch(/⛔/);
    expect(ran).toEqual(["stop web"]);
  });
});
