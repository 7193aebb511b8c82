import type { CommandSpec } from "../src/commands/declare.js";
import { accessCommands } from "./access.js";
import { alertCommands } from "./alerts.js";
import { bucketCommands } from "./bucket.js";
import { dbCommands } from "./db.js";
import { deployCommands } from "./deploy.js";
import { jobCommands } from "./jobs.js";
import { metaCommands } from "./meta.js";
import { nodeCommands } from "./nodes.js";
import { stolonCommands } from "./stolon.js";

/** Every command majordome knows, by family. */
export const allCommands: CommandSpec[] = [
  ...metaCommands,
  ...accessCommands,
  ...deployCommands,
  ...jobCommands,
  ...nodeCommands,
  ...dbCommands,
  ...stolonCommands,
  ...bucketCommands,
  ...alertCommands,
];
