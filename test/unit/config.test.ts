import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfigFile, parseConfig } from "../../src/config/load.js";

const minimal = `
matrix:
  homeserver_url: https://matrix.example.org
  access_token: \${TOKEN}
  user_domain: example.org
  command_rooms: ["!ops:example.org"]
`;

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, { env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("configuration", () => {
  it("fills production defaults and parses durations", () => {
    const config = parseConfig(minimal, { env: { TOKEN: "t0k" } });
    expect(config.matrix.access_token).toBe("t0k");
    expect(config.matrix.command_prefix).toBe("!");
    expect(config.timings.approval_expiry).toBe(15 * 60_000);
    expect(config.timings.command_timeout).toBe(5 * 60_000);
    expect(config.state.backend).toBe("file");
    expect(config.http.listen).toBe("127.0.0.1:9180");
  });

  it("lists every problem with its key path", () => {
    const problems = problemsOf(
      `
matrix:
  homeserver_url: not a url
  access_token: x
  user_domain: example.org
  command_rooms: []
  colour: blue
timings:
  approval_expiry: soon
http:
  listen: everywhere
`,
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^matrix\.homeserver_url: expected a URL/),
        expect.stringMatching(/^matrix\.command_rooms: at least one command room/),
        expect.stringMatching(/^matrix: unknown key colour/),
        expect.stringMatching(/^timings\.approval_expiry: expected a duration/),
        expect.stringMatching(/^http\.listen: expected host:port/),
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  it("names a missing environment variable", () => {
    expect(problemsOf(minimal)).toContain("matrix.access_token: environment variable TOKEN is not set");
  });

  it("reads secrets from *_file keys, relative to the config file, without echoing them in errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    writeFileSync(join(dir, "token"), "s3cr3t-token\n");
    const text = minimal.replace("access_token: ${TOKEN}", "access_token_file: token");
    writeFileSync(join(dir, "config.yml"), text);
    expect(loadConfigFile(join(dir, "config.yml")).matrix.access_token).toBe("s3cr3t-token");

    writeFileSync(
      join(dir, "both.yml"),
      text.replace("access_token_file: token", "access_token: a\n  access_token_file: token"),
    );
    expect(() => loadConfigFile(join(dir, "both.yml"))).toThrow(
      /give either access_token or access_token_file/,
    );

    writeFileSync(
      join(dir, "missing.yml"),
      text.replace("access_token_file: token", "access_token_file: nope"),
    );
    expect(() => loadConfigFile(join(dir, "missing.yml"))).toThrow(/cannot read nope: ENOENT/);
  });

  it("keeps $${...} literal", () => {
    const config = parseConfig(
      minimal.replace("${TOKEN}", () => "$${TOKEN}"),
      { env: {} },
    );
    expect(config.matrix.access_token).toBe("${TOKEN}");
  });

  it("accepts the shipped config.example.yml when its variables are set", () => {
    const text = readFileSync(new URL("../../config.example.yml", import.meta.url), "utf8");
    const env = Object.fromEntries([...text.matchAll(/\$\{(\w+)\}/g)].map((m) => [m[1], "x"]));
    const config = parseConfig(text, { env });
    expect(config.ldap?.cache_ttl).toBe(60_000);
    expect(config.nomad?.tls?.ca_file).toBe("/secrets/nomad-ca.crt");
  });

  it("reports YAML syntax errors", () => {
    expect(problemsOf("matrix: [unclosed")[0]).toMatch(/Flow sequence|flow collection|Missing/i);
  });
});
