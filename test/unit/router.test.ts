import { describe, expect, it } from "vitest";
import { defineCommand } from "../../src/commands/declare.js";
import { Router } from "../../src/commands/router.js";
import { integer, name, oneOf } from "../../src/commands/types.js";
import { metaCommands } from "../../handlers/meta.js";

const jobName = name("job name", /^[a-z0-9][a-z0-9-]*$/, "lowercase letters, digits and dashes");
const noop = async () => undefined;
const commands = [
  ...metaCommands,
  defineCommand({
    name: "scale",
    summary: "Scale a group",
    args: [
      { name: "job", type: jobName },
      { name: "group", type: jobName },
      { name: "count", type: integer("count", 0, 100) },
    ],
    run: noop,
  }),
  defineCommand({
    name: "db create",
    summary: "Create a database",
    args: [{ name: "name", type: jobName }],
    flags: {
      app: { summary: "secrets folder", type: jobName },
      force: { summary: "force", policy: "db create --force" },
    },
    run: noop,
  }),
  defineCommand({
    name: "db drop",
    summary: "Drop a database",
    args: [{ name: "name", type: jobName }],
    flags: { mode: { summary: "mode", type: oneOf("mode", ["soft", "hard"]) } },
    run: noop,
  }),
];
const router = new Router(commands, "!");

describe("router", () => {
  it("binds positionals, flags and policy keys", () => {
    const r = router.resolve('db create shop --app "web-shop" --force');
    expect(r).toMatchObject({
      kind: "command",
      args: { name: "shop", app: "web-shop", force: true },
      policyKeys: ["db create", "db create --force"],
    });
    expect(router.resolve("db create shop --app=web").kind).toBe("command");
    expect(router.resolve("scale web api 3")).toMatchObject({ args: { job: "web", group: "api", count: 3 } });
  });

  it("resolves aliases and multi-word names", () => {
    expect(router.resolve("h")).toMatchObject({ kind: "command", spec: { name: "help" } });
    expect(router.resolve("help db create")).toMatchObject({ args: { command: ["db", "create"] } });
  });

  it("rejects bad values, unknown flags, missing and extra arguments, naming the problem", () => {
    const err = (line: string) => {
      const r = router.resolve(line);
      if (r.kind !== "error") throw new Error(`expected an error for ${line}`);
      return r.message;
    };
    expect(err("scale web api many")).toMatch(/Bad count `many`: expected a whole number from 0 to 100/);
    expect(err("scale web api 101")).toMatch(/from 0 to 100/);
    expect(err("db create 'x; DROP DATABASE y'")).toMatch(/Bad name .*lowercase letters/);
    expect(err("db create shop --purge")).toMatch(
      /Unknown flag `--purge` for `db create`\. Known flags: `--app`, `--force`/,
    );
    expect(err("db create shop --force=yes")).toMatch(/takes no value/);
    expect(err("db create shop --app")).toMatch(/needs a job name/);
    expect(err("db create")).toMatch(/Missing `name`/);
    expect(err("db create a b")).toMatch(/Unexpected `b`/);
    expect(err("db drop x --mode medium")).toMatch(/expected one of soft, hard/);
    expect(err("db create x --force --force")).toMatch(/given twice/);
  });

  it("includes the usage line on argument errors", () => {
    const r = router.resolve("scale web");
    expect(r.kind === "error" && r.message).toContain("Usage: `!scale <job> <group> <count>`");
  });

  it("suggests the closest command for a typo", () => {
    const unknown = (line: string) => {
      const r = router.resolve(line);
      return r.kind === "error" ? r.message : "";
    };
    expect(unknown("hepl")).toMatch(/Did you mean `!help`\?/);
    expect(unknown("db craete shop")).toMatch(/Did you mean `!db create`\?/);
    expect(unknown("frobnicate")).not.toMatch(/Did you mean/);
  });

  it("refuses two commands with the same name", () => {
    expect(() => new Router([...metaCommands, ...metaCommands], "!")).toThrow(
      /two commands are named "help"/,
    );
  });
});
