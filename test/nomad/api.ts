import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** A thin HTTP client for the Nomad double's tests: real sockets, fetch, the wire as it is. */

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/nomad");

export const fixture = (name: string): string => readFileSync(path.join(fixtures, name), "utf8");

export interface Answer<T> {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body (a cast at the boundary: tests check shapes through the double's own types). */
  body: T;
}

export class NomadApi {
  constructor(
    readonly url: string,
    private readonly token?: string,
  ) {}

  async request<T = unknown>(method: string, apiPath: string, body?: unknown): Promise<Answer<T>> {
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers["X-Nomad-Token"] = this.token;
    const response = await fetch(this.url + apiPath, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    const parsed: unknown =
      response.headers.get("content-type") === "application/json" && text !== "" ? JSON.parse(text) : text;
    return { status: response.status, headers: response.headers, text, body: parsed as T };
  }

  get<T = unknown>(apiPath: string): Promise<Answer<T>> {
    return this.request<T>("GET", apiPath);
  }

  post<T = unknown>(apiPath: string, body?: unknown): Promise<Answer<T>> {
    return this.request<T>("POST", apiPath, body);
  }

  /** POST /v1/jobs/parse of a fixture; fails the test on anything but 200. */
  async parse(file: string, variables?: string): Promise<Record<string, unknown>> {
    const answer = await this.post<Record<string, unknown>>("/v1/jobs/parse", {
      JobHCL: fixture(file),
      Canonicalize: true,
      ...(variables === undefined ? {} : { Variables: variables }),
    });
    if (answer.status !== 200) throw new Error(`parse ${file}: ${answer.status} ${answer.text}`);
    return answer.body;
  }

  /** Parse and register a fixture; returns the register response. */
  async run(file: string, variables?: string): Promise<RegisterResponse> {
    const job = await this.parse(file, variables);
    const answer = await this.post<RegisterResponse>("/v1/jobs", { Job: job });
    if (answer.status !== 200) throw new Error(`register ${file}: ${answer.status} ${answer.text}`);
    return answer.body;
  }
}

export interface RegisterResponse {
  EvalID: string;
  EvalCreateIndex: number;
  JobModifyIndex: number;
  Warnings: string;
  Index: number;
}

/** Reads NDJSON lines from a streaming response until `until` says stop (or the time is up). */
export async function readLines(
  response: Response,
  until: (lines: string[]) => boolean,
  timeoutMs = 5_000,
): Promise<string[]> {
  const reader = response.body?.getReader();
  if (reader === undefined) return [];
  const decoder = new TextDecoder();
  const lines: string[] = [];
  let buffered = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!until(lines) && Date.now() < deadline) {
      const chunk = await Promise.race([
        reader.read(),
        new Promise<{ done: true; value: undefined }>((resolve) =>
          setTimeout(() => resolve({ done: true, value: undefined }), Math.max(1, deadline - Date.now())),
        ),
      ]);
      if (chunk.done) break;
      buffered += decoder.decode(chunk.value, { stream: true });
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      lines.push(...parts);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return lines;
}
