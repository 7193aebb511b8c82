/**
 * A reverse proxy on a loopback port in front of a double, recording each request it forwarded and the
 * status it got: the crash harness counts from it what a backend really did (registrations, creations,
 * writes), whoever sent them. Streams (Nomad's event stream, Consul's blocking queries) pass through.
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { closeServer, listenOn } from "../../src/sandbox/listen.js";

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  status: number;
  /** Kept only for the requests `keepBodies` selects. */
  requestBody?: string;
  responseBody?: string;
}

export interface RecordingProxy {
  readonly url: string;
  /** Requests answered so far, in the order their answers ended. */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startRecordingProxy(
  target: string,
  keepBodies: (method: string, path: string) => boolean = () => false,
): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const keep = keepBodies(method, path);
    const sent: Buffer[] = [];
    const received: Buffer[] = [];
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method,
        path,
        headers: { ...req.headers, host: upstream.host },
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (keep) answer.on("data", (chunk: Buffer) => received.push(chunk));
        answer.pipe(res);
        answer.on("end", () =>
          requests.push({
            method,
            path,
            status: answer.statusCode ?? 0,
            ...(keep
              ? {
                  requestBody: Buffer.concat(sent).toString("utf8"),
                  responseBody: Buffer.concat(received).toString("utf8"),
                }
              : {}),
          }),
        );
      },
    );
    // The client went away (a killed majordome): so does the request to the double.
    res.on("close", () => out.destroy());
    out.on("error", () => res.destroy());
    if (keep) req.on("data", (chunk: Buffer) => sent.push(chunk));
    req.pipe(out);
  };

  const server = createServer(forward);
  const url = await listenOn(server, "127.0.0.1", 0);
  return {
    url,
    requests,
    async close() {
      await closeServer(server);
      agent.destroy();
    },
  };
}
