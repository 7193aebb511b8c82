import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/load.js";

const base = `
matrix:
  homeserver_url: https://matrix.example.org
  access_token: t0k
  user_domain: example.org
  command_rooms: ["!ops:example.org"]
`;

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, { env: {} });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("the stolon config section", () => {
  it("fills Stolon's defaults", () => {
    const config = parseConfig(
      `${base}consul: { address: "http://127.0.0.1:8500" }\nstolon: { clusters: [pg] }\n`,
      {
        env: {},
      },
    );
    expect(config.stolon).toEqual({
      prefix: "stolon/cluster",
      clusters: ["pg"],
      rewrite_window: 12_000,
      failover_timeout: 120_000,
      keeper_gone_after: 30_000,
    });
  });

  it("needs the consul section, a known default cluster and names that are safe as key segments", () => {
    expect(problemsOf(`${base}stolon: { clusters: [pg] }\n`).join("\n")).toMatch(
      /stolon.*needs a consul section/,
    );
    const problems = problemsOf(
      `${base}consul: { address: "http://127.0.0.1:8500" }\nstolon: { prefix: "/stolon/", clusters: ["../x"], default_cluster: other }\n`,
    ).join("\n");
    expect(problems).toMatch(/stolon\.prefix.*key prefix/);
    expect(problems).toMatch(/stolon\.clusters\.0.*cluster name/);
    expect(
      problemsOf(
        `${base}consul: { address: "http://127.0.0.1:8500" }\nstolon: { clusters: [pg], default_cluster: other }\n`,
      ).join("\n"),
    ).toMatch(/stolon\.default_cluster.*must be one of clusters/);
  });
});
