import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { repoRoot } from "../support/paths.js";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { Inbox } from "../../src/chat/inbox.js";
import type { RoomEvent } from "../../src/chat/events.js";
import { FileStateStore } from "../../src/state/file-store.js";
import { ActionJournal } from "../../src/state/journal.js";

const freshDir = () => mkdtemp(join(tmpdir(), "majordome-state-"));

describe("file state store", () => {
  it("survives a reopen, with versions and check-and-set", async () => {
    const dir = await freshDir();
    const store = await FileStateStore.open(dir, { fsync: false });
    expect(await store.cas("a/1", { n: 1 }, 0)).toBe(true);
    expect(await store.cas("a/1", { n: 2 }, 0)).toBe(false);
    expect(await store.cas("a/1", { n: 2 }, 1)).toBe(true);
    await store.set("a/2", "two");
    await store.set("b/weird key/ü", [1]);
    await store.delete("nothing-here");
    await store.close();

    const reopened = await FileStateStore.open(dir);
    expect(await reopened.get("a/1")).toEqual({ value: { n: 2 }, version: 2 });
    expect((await reopened.list("a/")).map((e) => e.key)).toEqual(["a/1", "a/2"]);
    expect((await reopened.get("b/weird key/ü"))?.value).toEqual([1]);
    await reopened.delete("a/2");
    await reopened.close();
    expect((await (await FileStateStore.open(dir)).list("a/")).map((e) => e.key)).toEqual(["a/1"]);
  });

  it("a process killed with SIGKILL in the middle of writing leaves a consistent store", async () => {
    const dir = await freshDir();
    const module = pathToFileURL(join(repoRoot(), "dist", "src", "state", "file-store.js")).href;
    const script = `
      const { FileStateStore } = await import(${JSON.stringify(module)});
      const store = await FileStateStore.open(${JSON.stringify(dir)}, { fsync: false });
      for (let i = 1; ; i++) {
        await store.set("k" + (i % 50), { i, pad: "x".repeat(2000) });
        await store.set("counter", i);
        if (i === 500) console.log("writing");
      }`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));

    const store = await FileStateStore.open(dir);
    const counter = (await store.get<number>("counter"))!.value;
    expect(counter).toBeGreaterThanOrEqual(500);
    // Each k entry was written before the counter moved on: the one for `counter` is exactly it.
    expect((await store.get<{ i: number }>(`k${counter % 50}`))!.value.i).toBe(counter);
    expect(await store.list("k")).toHaveLength(50);
  });

  it("returns copies: changing a value read does not change the store", async () => {
    const store = await FileStateStore.open(await freshDir(), { fsync: false });
    await store.set("k", { list: [1] });
    const read = await store.get<{ list: number[] }>("k");
    read!.value.list.push(2);
    expect((await store.get("k"))?.value).toEqual({ list: [1] });
  });

  it("keeps an append-only audit log", async () => {
    const store = await FileStateStore.open(await freshDir(), { fsync: false });
    for (let i = 0; i < 5; i++) await store.appendAudit({ at: i, kind: "command", command: `c${i}` });
    expect((await store.readAudit(2)).map((e) => e.command)).toEqual(["c3", "c4"]);
  });
});

describe("action journal", () => {
  it("runs each step once, even when the action is run again after a restart", async () => {
    const dir = await freshDir();
    const clock = new ManualClock();
    let journal = new ActionJournal(await FileStateStore.open(dir, { fsync: false }), clock);
    const calls: string[] = [];
    const step = (name: string) => async () => {
      calls.push(name);
      return { made: name };
    };
    const action = {
      id: "act-1",
      kind: "db create",
      args: { name: "shop" },
      requester: "@a:x",
      roomId: "!r",
    };
    expect((await journal.begin(action)).fresh).toBe(true);
    await journal.step("act-1", "role", step("role"));

    // "Restart": a new journal on the same directory; the same action begins again.
    journal = new ActionJournal(await FileStateStore.open(dir, { fsync: false }), clock);
    const again = await journal.begin(action);
    expect(again.fresh).toBe(false);
    expect(await journal.unfinished()).toHaveLength(1);
    expect(await journal.step("act-1", "role", step("role"))).toEqual({ made: "role" });
    await journal.step("act-1", "database", step("database"));
    await journal.finish("act-1", "succeeded");

    expect(calls).toEqual(["role", "database"]);
    expect(await journal.unfinished()).toHaveLength(0);
    await expect(journal.step("act-1", "late", step("late"))).rejects.toThrow(/is succeeded/);
  });
});

describe("inbox", () => {
  const event = (n: number): RoomEvent => ({
    roomId: "!r",
    eventId: `$e${n}`,
    sender: "@alice:x",
    type: "m.room.message",
    content: { msgtype: "m.text", body: `!ping ${n}` },
    originServerTs: n,
  });

  it("accepts each event once, keeps pending ones across a restart, forgets the oldest processed", async () => {
    const dir = await freshDir();
    let inbox = new Inbox(await FileStateStore.open(dir, { fsync: false }), 100);
    await inbox.load();
    expect(await inbox.accept(event(1))).toBe(true);
    expect(await inbox.accept(event(1))).toBe(false);
    expect(await inbox.accept(event(2))).toBe(true);
    await inbox.done("$e1");

    inbox = new Inbox(await FileStateStore.open(dir, { fsync: false }), 100);
    const pending = await inbox.load();
    expect(pending.map((e) => e.eventId)).toEqual(["$e2"]);
    expect(await inbox.accept(event(1))).toBe(false); // redelivered after the restart: ignored
    expect(inbox.isDone("$e1")).toBe(true);
    expect(inbox.isDone("$e2")).toBe(false);

    for (let n = 3; n < 200; n++) {
      await inbox.accept(event(n));
      await inbox.done(`$e${n}`);
    }
    expect(inbox.seen("$e1")).toBe(false); // beyond the 100 kept
    expect(inbox.seen("$e199")).toBe(true);
    inbox = new Inbox(await FileStateStore.open(dir, { fsync: false }), 100);
    await inbox.load();
    expect(inbox.seen("$e199")).toBe(true);
    expect(inbox.seen("$e150")).toBe(true);
  });
});
