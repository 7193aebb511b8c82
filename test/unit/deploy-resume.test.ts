import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import type { Message } from "../../src/chat/message.js";
import type { Services } from "../../src/commands/context.js";
import { FileStateStore } from "../../src/state/file-store.js";
import { ActionJournal } from "../../src/state/journal.js";
import { resumeDeploy } from "../../handlers/deploy.js";

/** A journal, an outbox that records, and a Nomad client whose rollout has ended as `status`. */
async function setup(status = "successful") {
  const store = await FileStateStore.open(await mkdtemp(join(tmpdir(), "majordome-deploy-")), {
    fsync: false,
  });
  const clock = new ManualClock();
  const journal = new ActionJournal(store, clock);
  const edits: Array<[string, string]> = [];
  const sent: string[] = [];
  const calls: string[] = [];
  const client = {
    register: () => {
      calls.push("register");
      throw new Error("registered again");
    },
    evaluation: (id: string) => {
      calls.push(`evaluation ${id}`);
      return Promise.resolve({ value: { ID: id, Status: "complete", DeploymentID: "dep-1" }, index: 5 });
    },
    deployment: (id: string) => {
      calls.push(`deployment ${id}`);
      return Promise.resolve({ value: { ID: id, Status: status, JobVersion: 1, TaskGroups: {} }, index: 9 });
    },
    allocations: () => Promise.resolve({ value: [], index: 1 }),
  };
  const services = {
    clock,
    store,
    journal,
    nomad: { client, deployTimeoutMs: 600_000 },
    outbox: {
      edit: (_room: string, id: string, msg: Message) => {
        edits.push([id, msg.markdown]);
        return Promise.resolve();
      },
      send: (_room: string, msg: Message) => {
        sent.push(msg.markdown);
        return Promise.resolve("t");
      },
    },
  } as unknown as Services;
  return { services, journal, edits, sent, calls };
}

const deployArgs = { job: "web", vars: [], digest: "abc", prefix: "!", replyTo: "$cmd" };

/** A deploy the journal recorded as begun, before any registration. */
const beganBeforeTheRestart = (journal: ActionJournal) =>
  journal.begin({ id: "deploy-$cmd", kind: "deploy", args: deployArgs, requester: "@a:x", roomId: "!r" });

/** A deploy whose registration (evaluation `eval-1`, progress message `$cmd#1`) the journal recorded. */
async function registeredBeforeTheRestart(journal: ActionJournal): Promise<void> {
  await beganBeforeTheRestart(journal);
  await journal.step("deploy-$cmd", "registered", async () => ({ evalId: "eval-1", progressId: "$cmd#1" }));
}

describe("resuming a deploy after a restart", () => {
  it("follows the recorded evaluation again, edits the same progress message, never registers again", async () => {
    const { services, journal, edits, calls } = await setup();
    await registeredBeforeTheRestart(journal);

    const text = await resumeDeploy(services, (await journal.get("deploy-$cmd"))!);

    expect(text).toContain("is deployed and healthy");
    expect(calls).toEqual(["evaluation eval-1", "deployment dep-1"]);
    expect(edits.map(([id]) => id)).toEqual(["$cmd#1"]);
    // Closed by the resumer once its report is sent.
    expect((await journal.get("deploy-$cmd"))?.status).toBe("running");
  });

  it("keeps the deadline of the registration: a rollout registered longer ago than the timeout is left at once", async () => {
    const { services, journal, sent, calls } = await setup("running");
    await registeredBeforeTheRestart(journal);
    await (services.clock as ManualClock).advance(600_001);

    const text = await resumeDeploy(services, (await journal.get("deploy-$cmd"))!);

    expect(text).toContain("deployment timeout");
    expect(sent).toEqual([expect.stringMatching(/Stopped following `web` after 10 min; Nomad goes on/)]);
    expect(calls).toEqual(["evaluation eval-1"]);
  });

  it("says a failed rollout failed", async () => {
    const { services, journal } = await setup("failed");
    await registeredBeforeTheRestart(journal);
    expect(await resumeDeploy(services, (await journal.get("deploy-$cmd"))!)).toContain("deployment failed");
  });

  it("closes one interrupted before its registration was recorded, without submitting it", async () => {
    const { services, journal, calls } = await setup();
    await beganBeforeTheRestart(journal);

    const text = await resumeDeploy(services, (await journal.get("deploy-$cmd"))!);

    expect(text).toContain("not submitted again");
    expect(calls).toEqual([]);
    expect((await journal.get("deploy-$cmd"))?.status).toBe("interrupted");
  });

  it("closes an approved request's record by the deploy it started", async () => {
    const { services, journal, calls } = await setup();
    await journal.begin({
      id: "req-1",
      kind: "deploy",
      args: { job: "web" },
      requester: "@a:x",
      roomId: "!r",
    });
    await journal.begin({
      id: "deploy-$req-abc",
      kind: "deploy",
      args: { ...deployArgs, replyTo: undefined, threadRoot: "$req" },
      requester: "@a:x",
      roomId: "!r",
    });
    await journal.step("deploy-$req-abc", "registered", async () => ({ evalId: "e", progressId: "p" }));

    const text = await resumeDeploy(services, (await journal.get("req-1"))!);

    expect(text).toContain("its rollout is followed again");
    expect(calls).toEqual([]);
    expect((await journal.get("req-1"))?.status).toBe("succeeded");
  });
});
