import { describe, expect, it } from "vitest";
import { REDACTED, redactSecrets, taskSecrets } from "../../src/backends/nomad/task-secrets.js";
import type { FullAllocation } from "../../src/backends/nomad/types.js";

function allocationWith(task: {
  Env?: Record<string, string>;
  Templates?: Array<{ EmbeddedTmpl?: string }>;
}): FullAllocation {
  return {
    ID: "a1",
    JobID: "app",
    TaskGroup: "g",
    Job: {
      TaskGroups: [
        { Name: "other", Tasks: [] },
        { Name: "g", Tasks: [{ Name: "t", ...task }] },
      ],
    },
  } as FullAllocation;
}

describe("a task's secrets", () => {
  it("are its secret-named env values, literal secret lines of its templates, and the secrets/ keys they read", () => {
    const secrets = taskSecrets(
      allocationWith({
        Env: { DB_PASSWORD: "pw-123456", S3_SECRET_KEY: "sk-abcdef", LISTEN: "0.0.0.0:8080" },
        Templates: [
          {
            EmbeddedTmpl: [
              'SMTP_PASS="literal-pass"',
              'API_TOKEN={{ key "secrets/app/api_token" }}',
              '{{- keyOrDefault "secrets/app/salt" "x" }}',
              'MODE={{ key "configs/app/mode" }}',
              "HOSTNAME=web-1",
            ].join("\n"),
          },
        ],
      }),
      "t",
      "secrets/",
    );
    expect(secrets.values.sort()).toEqual(["literal-pass", "pw-123456", "sk-abcdef"]);
    expect(secrets.consulKeys.sort()).toEqual(["secrets/app/api_token", "secrets/app/salt"]);
  });

  it("are none for a task the allocation's job does not have", () => {
    expect(taskSecrets(allocationWith({ Env: { TOKEN: "abcdefgh" } }), "nope", "secrets/")).toEqual({
      values: [],
      consulKeys: [],
    });
  });
});

describe("redaction", () => {
  it("replaces each secret, longest first, as written and percent-encoded, and any URL's password", () => {
    const text = [
      "password is p@ss/word-1 and p@ss/word-12",
      "dsn postgres://app:p%40ss%2Fword-1@db:5432/app",
      "mirror https://user:other-pw@mirror.example.org/x and http://host/path@nothing",
      "short: true",
    ].join("\n");
    expect(redactSecrets(text, ["p@ss/word-1", "p@ss/word-12", "true"])).toBe(
      [
        `password is ${REDACTED} and ${REDACTED}`,
        `dsn postgres://app:${REDACTED}@db:5432/app`,
        `mirror https://user:${REDACTED}@mirror.example.org/x and http://host/path@nothing`,
        "short: true",
      ].join("\n"),
    );
  });
});
