import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HealthReport {
  healthy: boolean;
  role: string;
  reasons: string[];
}

export interface HttpServer {
  readonly url: string;
  close(): Promise<void>;
}

/** `/health` for Nomad's check (200 healthy, 503 not, JSON either way) and `/metrics` for Prometheus. */
export async function startHttpServer(
  listen: string,
  health: () => Promise<HealthReport>,
  registry: Registry,
): Promise<HttpServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const answer = async () => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
      } else if (path === "/health") {
        const report = await health();
        res.writeHead(report.healthy ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify(report));
      } else if (path === "/metrics") {
        const body = await registry.metrics();
        res.writeHead(200, { "content-type": registry.contentType }).end(body);
      } else {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      }
    };
    answer().catch((error: unknown) => {
      res.writeHead(500, { "content-type": "text/plain" }).end(`${(error as Error).message}\n`);
    });
  });
  const separator = listen.lastIndexOf(":");
  const [host, port] = [listen.slice(0, separator), Number(listen.slice(separator + 1))];
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
