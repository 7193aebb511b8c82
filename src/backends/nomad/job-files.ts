import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, realpath } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface JobSource {
  name: string;
  path: string;
  /** The HCL with every file("…") replaced by the file's content (Nomad's parse endpoint refuses file()). */
  hcl: string;
  /** The commit of the checkout the file was read from, when it is a git checkout. */
  commit?: string;
}

export class JobFileError extends Error {}

/** Names a job file may be asked by: what Nomad job IDs in such a repository look like. */
export const JOB_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * Job files in a checkout of the infrastructure repository. git is run as a command (two calls:
 * pull and rev-parse), which needs no library.
 */
export class JobFiles {
  constructor(
    private readonly dir: string,
    private readonly explicit: Record<string, string>,
    private readonly gitPull: boolean,
  ) {}

  async read(name: string): Promise<JobSource> {
    if (!JOB_NAME.test(name))
      throw new JobFileError(`"${name}" is not a job name (lowercase letters, digits, - and _)`);
    const isGit = existsSync(join(this.dir, ".git"));
    if (isGit && this.gitPull) await this.pull();
    const path = await this.locate(name);
    const hcl = await inlineFiles(await readFile(path, "utf8"), path, this.dir);
    const commit = isGit ? await this.head() : undefined;
    return { name, path: relative(this.dir, path), hcl, ...(commit ? { commit } : {}) };
  }

  private async locate(name: string): Promise<string> {
    const candidates = this.explicit[name]
      ? [this.explicit[name]!]
      : [
          `${name}.hcl`,
          `${name}.nomad.hcl`,
          `${name}.nomad`,
          `${name}/${name}.hcl`,
          `${name}/${name}.nomad.hcl`,
          `${name}/deploy/${name}.hcl`,
        ];
    for (const candidate of candidates) {
      const path = resolve(this.dir, candidate);
      if (existsSync(path)) return inside(this.dir, path);
    }
    throw new JobFileError(
      `no job file for ${name} in the jobs directory (looked for ${candidates.join(", ")})`,
    );
  }

  private async pull(): Promise<void> {
    try {
      await run("git", ["-C", this.dir, "pull", "--ff-only", "--quiet"], { timeout: 60_000 });
    } catch (error) {
      const said = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
      throw new JobFileError(`git pull --ff-only failed in the jobs directory: ${said}`);
    }
  }

  private async head(): Promise<string | undefined> {
    try {
      return (await run("git", ["-C", this.dir, "rev-parse", "--short=12", "HEAD"])).stdout.trim();
    } catch {
      return undefined;
    }
  }
}

/**
 * Replaces `file("relative/path")` (relative to the job file, as Nomad's CLI reads it) with the file's
 * content as an HCL string. Other file functions, or a path built from expressions, cannot be
 * inlined: the job is refused with the reason.
 */
export async function inlineFiles(hcl: string, jobPath: string, root: string): Promise<string> {
  const other = /\b(filebase64|fileexists|fileset|templatefile)\s*\(/.exec(hcl);
  if (other)
    throw new JobFileError(`the job uses ${other[1]}(), which cannot be sent to Nomad's parse endpoint`);
  const calls = [...hcl.matchAll(/\bfile\s*\(\s*("(?:[^"\\$]|\\.)*")\s*\)/g)];
  const dynamic = /\bfile\s*\(\s*(?!"(?:[^"\\$]|\\.)*"\s*\))/.exec(hcl);
  if (dynamic)
    throw new JobFileError(
      "the job calls file() with a computed path; only a plain quoted path can be inlined",
    );
  let out = hcl;
  for (const call of calls.reverse()) {
    const relativePath = JSON.parse(call[1]!) as string;
    const path = await inside(root, resolve(dirname(jobPath), relativePath));
    let content: string;
    try {
      content = await readFile(path, "utf8");
    } catch {
      throw new JobFileError(`the job reads file("${relativePath}"), which does not exist`);
    }
    out = out.slice(0, call.index) + hclString(content) + out.slice(call.index! + call[0].length);
  }
  return out;
}

/** A quoted HCL string with the same text: JSON escapes, plus HCL's template sequences escaped. */
function hclString(text: string): string {
  return JSON.stringify(text).replace(/\$\{/g, "$${").replace(/%\{/g, "%%{");
}

async function inside(root: string, path: string): Promise<string> {
  const [realRoot, realPath] = await Promise.all([realpath(root), realpath(path).catch(() => path)]);
  const rel = relative(realRoot, realPath);
  if (rel.startsWith("..") || resolve(realRoot, rel) !== realPath) {
    throw new JobFileError(`${path} is outside the jobs directory`);
  }
  return realPath;
}
