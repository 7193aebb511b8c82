import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DockerfileParser, type Copy, type Instruction } from "dockerfile-ast";
import { configSchema, type Config } from "../../src/config/schema.js";
import { repoRoot } from "../support/paths.js";

/** One build stage of the Dockerfile, its ARG-expanded base image and its instructions. */
export interface Stage {
  name: string | undefined;
  image: string;
  instructions: Instruction[];
}

export function readRepoFile(path: string): string {
  return readFileSync(join(repoRoot(), path), "utf8");
}

export function dockerfileStages(text = readRepoFile("Dockerfile")): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (instruction.getKeyword() === "FROM") {
      const [image = "", as, name] = instruction.getExpandedArguments().map((a) => a.getValue());
      stages.push({ name: as?.toUpperCase() === "AS" ? name : undefined, image, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

export const finalStage = (stages: Stage[]): Stage => stages.at(-1)!;

export function instructionsOf(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.getKeyword() === keyword);
}

/** A COPY's sources and the stage it copies from (undefined: the build context). */
export function copySources(instruction: Instruction): { from: string | undefined; sources: string[] } {
  const copy = instruction as Copy;
  const args = copy.getArguments().map((a) => a.getValue());
  return { from: copy.getFromFlag()?.getValue() ?? undefined, sources: args.slice(0, -1) };
}

/** ENV values of a stage, the last assignment winning. */
export function envOf(stage: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const instruction of instructionsOf(stage, "ENV")) {
    const [name, ...value] = (instruction.getArgumentsContent() ?? "").split("=");
    if (name) env.set(name.trim(), value.join("=").trim());
  }
  return env;
}

/** The final image's HEALTHCHECK: its exec-form command and the URL it asks (from the image's ENV). */
export function imageHealthcheck(stages = dockerfileStages()): { command: string[]; url: URL } {
  const stage = finalStage(stages);
  const [healthcheck] = instructionsOf(stage, "HEALTHCHECK");
  if (!healthcheck) throw new Error("the final stage has no HEALTHCHECK");
  const json = (healthcheck.getArgumentsContent() ?? "").replace(/^CMD\s+/, "");
  const command = JSON.parse(json) as string[];
  const variable = /process\.env\.([A-Z_]+)/.exec(command.join(" "))?.[1];
  const url = variable ? envOf(stage).get(variable) : /https?:\/\/[^\s'"`)]+/.exec(command.join(" "))?.[0];
  if (!url) throw new Error("the HEALTHCHECK names no URL");
  return { command, url: new URL(url) };
}

/** majordome's configuration with every default, for the smallest valid file. */
export function configDefaults(): Config {
  return configSchema.parse({
    matrix: {
      homeserver_url: "https://matrix.example.org",
      access_token: "unused",
      user_domain: "example.org",
      command_rooms: ["!ops:example.org"],
    },
  });
}

/** The port of a `host:port` listen address. */
export const portOf = (listen: string): string => listen.slice(listen.lastIndexOf(":") + 1);
