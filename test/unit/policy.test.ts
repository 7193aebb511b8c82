import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPolicies, parsePolicyFile, Policies, PolicyError } from "../../src/auth/policy.js";
import { PolicyAuthorizer } from "../../src/commands/authorize.js";
import type { Identity } from "../../src/commands/context.js";

const person = (groups: string[] | null): Identity => ({
  sender: "@x:example.org",
  user: groups && { username: "x", dn: "cn=x", groups },
  ...(groups ? {} : { reason: "@x:example.org is not a user of example.org" }),
});

describe("policies", () => {
  const policies = new Policies(
    parsePolicyFile(
      `
rules:
  - match: ["db *"]
    allow: [members]
  - match: ["db drop", "db drop --force"]
    allow: [admin]
    approval: { approvers: 2, from: [admin], expires: 30m }
  - match: [help]
    allow: [anyone]
  - match: [stop]
    allow: [admin]
    rooms: ["!ops:example.org"]
    approval: { approvers: 1, from: [admin] }
`,
      "p.yml",
    ),
  );
  const authorizer = new PolicyAuthorizer(policies);

  it("picks the most specific rule: exact names before patterns", () => {
    expect(policies.ruleFor("db drop")?.source).toBe("p.yml rule 2");
    expect(policies.ruleFor("db list")?.source).toBe("p.yml rule 1");
    expect(policies.ruleFor("deploy")).toBeUndefined();
  });

  it("denies what no rule names, and anyone not in the directory", () => {
    expect(authorizer.decide(person(["admin"]), ["deploy"], "!r")).toMatchObject({
      outcome: "deny",
      reason: "no policy names deploy, so it is denied.",
    });
    expect(authorizer.decide(person(null), ["help"], "!r")).toMatchObject({ outcome: "deny" });
    expect(authorizer.decide(person([]), ["help"], "!r")).toMatchObject({ outcome: "allow" });
  });

  it("needs every key allowed; the strictest approval applies", () => {
    expect(authorizer.decide(person(["members"]), ["db list"], "!r").outcome).toBe("allow");
    expect(authorizer.decide(person(["members"]), ["db drop"], "!r").outcome).toBe("deny");
    const decision = authorizer.decide(person(["admin"]), ["db drop", "db drop --force"], "!r");
    expect(decision).toMatchObject({
      outcome: "approval",
      approval: { approvers: 2, expires: 30 * 60_000, self_approval: false },
    });
  });

  it("restricts a rule to its rooms", () => {
    expect(authorizer.decide(person(["admin"]), ["stop"], "!elsewhere").outcome).toBe("deny");
    expect(authorizer.decide(person(["admin"]), ["stop"], "!ops:example.org")).toMatchObject({
      outcome: "approval",
      approval: { approvers: 1, expires: 15 * 60_000 },
    });
  });

  it("stops start-up on a broken file, naming the file, the rule and the problem", async () => {
    const dir = await mkdtemp(join(tmpdir(), "policies-"));
    await writeFile(join(dir, "a.yml"), "rules:\n  - match: [help]\n    allow: [anyone]\n");
    await writeFile(
      join(dir, "b.yml"),
      "rules:\n  - match: [stop]\n    allow: []\n    approval: { approvers: 0, from: [admin], expires: soon }\n    colour: red\n",
    );
    const error = await loadPolicies(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyError);
    const text = (error as Error).message;
    expect(text).toContain(join(dir, "b.yml"));
    expect(text).toMatch(/rules\.0\.allow: /);
    expect(text).toMatch(/rules\.0\.approval\.approvers: /);
    expect(text).toMatch(/rules\.0\.approval\.expires: expected a duration/);
    expect(text).toMatch(/rules\.0: .*colour/);
    await expect(loadPolicies(join(dir, "missing"))).rejects.toThrow(/cannot read the policies directory/);
  });

  it("the shipped policies load, and follow the collective's habits", async () => {
    const shipped = new PolicyAuthorizer(await loadPolicies("policies"));
    expect(shipped.decide(person(["asso_deuxfleurs"]), ["status"], "!r").outcome).toBe("allow");
    expect(shipped.decide(person(["asso_deuxfleurs"]), ["deploy"], "!r").outcome).toBe("deny");
    expect(shipped.decide(person(["admin"]), ["deploy"], "!r").outcome).toBe("allow");
    expect(shipped.decide(person(["admin"]), ["db drop"], "!r").outcome).toBe("approval");
    expect(shipped.decide(person(["admin"]), ["stop", "stop --purge"], "!r").outcome).toBe("approval");
  });
});
