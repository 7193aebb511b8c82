/**
 * The Dockerfile, checked without a Docker engine (none runs here): parsed with dockerfile-ast, its
 * stages, copies, user and health check compared with the repository, the lockfile and the server.
 */
import { execFile } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Registry } from "prom-client";
import semver from "semver";
import { afterEach, describe, expect, it } from "vitest";
import { startHttpServer, type HealthReport } from "../../src/http/server.js";
import { repoRoot } from "../support/paths.js";
import {
  configDefaults,
  copySources,
  dockerfileStages,
  finalStage,
  imageHealthcheck,
  instructionsOf,
  portOf,
  readRepoFile,
  type Stage,
} from "./image.js";

interface LockEntry {
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  link?: boolean;
  resolved?: string;
  hasInstallScript?: boolean;
  engines?: Record<string, string> | string[];
  cpu?: string[];
}

const stages = dockerfileStages();
const final = finalStage(stages);
const pkg = JSON.parse(readRepoFile("package.json")) as {
  engines: { node: string };
  overrides: Record<string, string>;
  devDependencies: Record<string, string>;
};
const lock = JSON.parse(readRepoFile("package-lock.json")) as { packages: Record<string, LockEntry> };
const lockEntries = Object.entries(lock.packages).filter(([path]) => path !== "");
const production = lockEntries.filter(([, entry]) => !entry.dev);
const packageName = (path: string) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);

const runs = (stage: Stage) => instructionsOf(stage, "RUN").map((i) => i.getArgumentsContent() ?? "");
/** The stage an instruction of the final stage copies `path` from. */
function stageProviding(path: string): Stage {
  const copy = instructionsOf(final, "COPY")
    .map(copySources)
    .find((c) => c.sources.includes(path));
  const stage = stages.find((s) => s.name === copy?.from);
  if (!stage) throw new Error(`the final stage copies ${path} from no earlier stage`);
  return stage;
}

describe("Dockerfile", () => {
  it("is multi-stage: the final image copies built code and dependencies from earlier stages", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const fromStages = instructionsOf(final, "COPY")
      .map(copySources)
      .filter((c) => c.from !== undefined);
    expect(fromStages.map((c) => c.sources).flat()).toEqual(
      expect.arrayContaining(["/app/node_modules", "/app/dist/src"]),
    );
    // Nothing is compiled or installed in the final stage itself.
    expect(runs(final).join("\n")).not.toMatch(/\bnpm\b|\btsc\b/);
  });

  it("runs as a user that is not root", () => {
    const users = instructionsOf(final, "USER").map((i) => i.getArgumentsContent() ?? "");
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.split(":")[0]!;
    expect(["root", "0", ""]).not.toContain(user);
  });

  it("installs production dependencies only, from the lockfile, with no install script", () => {
    const deps = stageProviding("/app/node_modules");
    const install = runs(deps).find((r) => /\bnpm (ci|install|i)\b/.test(r));
    expect(install).toMatch(/\bnpm ci\b/);
    expect(install).toMatch(/--omit=dev\b/);
    expect(install).toMatch(/--ignore-scripts\b/);
    expect(install).not.toMatch(/--include=dev/);
    // --ignore-scripts drops nothing a production package needs.
    expect(production.filter(([, e]) => e.hasInstallScript).map(([p]) => p)).toEqual([]);
  });

  it("never downloads the native Matrix crypto binding: the stand-in in packages/ replaces it", () => {
    const crypto = "@matrix-org/matrix-sdk-crypto-nodejs";
    expect(pkg.overrides[crypto]).toMatch(/^file:\.\/packages\//);
    expect(existsSync(join(repoRoot(), pkg.overrides[crypto]!.slice("file:".length), "index.js"))).toBe(true);
    const entry = lock.packages[`node_modules/${crypto}`];
    expect(entry?.link).toBe(true);
    expect(entry?.resolved ?? "").not.toMatch(/^https?:/);
    // No platform package of the real binding in the production tree.
    expect(production.map(([p]) => packageName(p)).filter((n) => n.startsWith(`${crypto}-`))).toEqual([]);
    // The stand-in is in place (packages/ copied) before npm ci resolves the link, in every stage that
    // installs, and in the final image, where node_modules links to it.
    for (const stage of stages) {
      const copies = stage.instructions.map((i) =>
        i.getKeyword() === "COPY" ? copySources(i).sources : i.getKeyword() === "RUN" ? "RUN" : [],
      );
      const firstRun = copies.findIndex((c) => c === "RUN");
      const packagesAt = copies.findIndex((c) => Array.isArray(c) && c.includes("packages"));
      if (runs(stage).some((r) => /\bnpm ci\b/.test(r))) {
        expect(packagesAt).toBeGreaterThanOrEqual(0);
        expect(packagesAt).toBeLessThan(firstRun);
      }
    }
    const finalContext = instructionsOf(final, "COPY").map(copySources);
    expect(finalContext.some((c) => c.from === undefined && c.sources.includes("packages"))).toBe(true);
  });

  it("builds on any architecture: platform-bound dev packages are left out of the build's npm ci", () => {
    const build = stageProviding("/app/dist/src");
    const platformBound = lockEntries
      .filter(([, e]) => e.dev && e.cpu && !e.optional && !e.devOptional)
      .map(([p]) => packageName(p));
    expect(platformBound.length).toBeGreaterThan(0);
    const script = runs(build).join("\n");
    const npmCi = script.indexOf("npm ci");
    expect(npmCi).toBeGreaterThanOrEqual(0);
    for (const name of platformBound) {
      const deleted = script.indexOf(`npm pkg delete devDependencies.${name}`);
      expect(deleted, `${name} is removed before npm ci`).toBeGreaterThanOrEqual(0);
      expect(deleted).toBeLessThan(npmCi);
    }
  });

  it("copies nothing dev-only into the final image", () => {
    const copies = instructionsOf(final, "COPY").map(copySources);
    const fromContext = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    const devOnly =
      /^(src|test|bench|scripts|deploy|dist|node_modules|coverage|\.git)(\/|$)|^tsconfig|config\.ts$|^eslint/;
    expect(fromContext.filter((source) => devOnly.test(source))).toEqual([]);
    const built = copies.filter((c) => c.from !== undefined).flatMap((c) => c.sources);
    for (const source of built) expect(source).toMatch(/^\/app\/(node_modules|dist\/(src|handlers))$/);
    for (const source of fromContext) expect(existsSync(join(repoRoot(), source)), source).toBe(true);
  });

  it("sends only what it copies as build context (.dockerignore allow-list)", () => {
    const lines = readRepoFile(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    expect(lines[0]).toBe("*");
    const admitted = new Set(lines.slice(1).map((l) => l.replace(/^!/, "")));
    expect(lines.slice(1).every((l) => l.startsWith("!"))).toBe(true);
    const copied = new Set(
      stages
        .flatMap((s) => instructionsOf(s, "COPY").map(copySources))
        .filter((c) => c.from === undefined)
        .flatMap((c) => c.sources),
    );
    expect([...admitted].sort()).toEqual([...copied].sort());
  });

  it("starts the launcher, which exists and is executable", () => {
    const [entrypoint] = instructionsOf(final, "ENTRYPOINT");
    const [command] = JSON.parse(entrypoint?.getArgumentsContent() ?? "[]") as string[];
    expect(command).toBe("/app/bin/majordome");
    const copiedBin = instructionsOf(final, "COPY")
      .map(copySources)
      .some((c) => c.from === undefined && c.sources.includes("bin"));
    expect(copiedBin).toBe(true);
    expect(statSync(join(repoRoot(), "bin", "majordome")).mode & 0o111).not.toBe(0);
  });

  it("uses a Node.js that satisfies package.json's engines and every production dependency's", () => {
    const images = new Set(stages.map((s) => s.image));
    expect(images.size).toBe(1);
    const [image = ""] = images;
    const [name, tag = ""] = image.split(":");
    expect(name).toBe("node");
    expect(tag).toMatch(/slim/);
    // The lowest release the tag can name (node:24-… may be any 24.x).
    const lowest = semver.coerce(tag)!.version;
    expect(semver.satisfies(lowest, pkg.engines.node), `${lowest} vs ${pkg.engines.node}`).toBe(true);
    const unsatisfied = production.filter(([, e]) => {
      const range = !Array.isArray(e.engines) ? e.engines?.node : undefined;
      return range !== undefined && !semver.satisfies(lowest, range);
    });
    expect(unsatisfied.map(([p, e]) => `${p} ${JSON.stringify(e.engines)}`)).toEqual([]);
  });

  describe("HEALTHCHECK", () => {
    const closers: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const close of closers.splice(0)) await close();
    });

    /** Runs the image's health check command against a URL; answers its exit code. */
    async function runCheck(url: string): Promise<number> {
      const { command } = imageHealthcheck(stages);
      expect(command[0]).toBe("node");
      try {
        await promisify(execFile)(process.execPath, command.slice(1), {
          env: { ...process.env, MAJORDOME_HEALTH_URL: url },
          timeout: 10_000,
        });
        return 0;
      } catch (error) {
        return (error as { code?: number }).code ?? -1;
      }
    }

    async function serve(report: HealthReport): Promise<string> {
      const server = await startHttpServer("127.0.0.1:0", async () => report, new Registry());
      closers.push(() => server.close());
      return server.url;
    }

    it("asks majordome's /health on loopback, on the port majordome listens on by default", () => {
      const { url } = imageHealthcheck(stages);
      expect(url.hostname).toBe("127.0.0.1");
      expect(url.port).toBe(portOf(configDefaults().http.listen));
      const exposed = instructionsOf(final, "EXPOSE").map((i) => i.getArgumentsContent());
      expect(exposed).toContain(url.port);
    });

    it("passes when the server says healthy, fails when it says not, or does not answer", async () => {
      const { url } = imageHealthcheck(stages);
      const healthy = await serve({ healthy: true, role: "standby", reasons: [] });
      expect(await runCheck(`${healthy}${url.pathname}`)).toBe(0);
      const sick = await serve({ healthy: false, role: "leader", reasons: ["no sync for 3 minutes"] });
      expect(await runCheck(`${sick}${url.pathname}`)).toBe(1);
      // A path the server does not serve is not health.
      expect(await runCheck(`${healthy}/nothing-here`)).toBe(1);
      const closed = await serve({ healthy: true, role: "leader", reasons: [] });
      await closers.pop()!();
      expect(await runCheck(`${closed}${url.pathname}`)).toBe(1);
    });
  });
});
