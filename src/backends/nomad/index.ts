import type { NomadClient } from "./client.js";
import type { JobFiles } from "./job-files.js";

/** What the Nomad commands need: the API, where job files are, and how long to follow a deployment. */
export interface NomadServices {
  client: NomadClient;
  jobFiles?: JobFiles;
  deployTimeoutMs: number;
}

export { NomadClient, NomadError } from "./client.js";
export { JobFiles, JobFileError, JOB_NAME } from "./job-files.js";
