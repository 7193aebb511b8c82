import { Agent, request } from "undici";
import { DeliveryError } from "../transport.js";

/**
 * The outbox's one request to the homeserver, PUT with a transaction ID, over undici. matrix-bot-sdk
 * sends through the deprecated `request` package, which cost majordome more CPU per message than
 * everything else in a command (measured by the deploy benchmark); sync, and all the rest, stay on the
 * SDK. Errors become DeliveryErrors the way deliveryError() reads the SDK's.
 */
export class MatrixSender {
  private readonly agent = new Agent({ keepAliveTimeout: 30_000 });
  private readonly base: string;

  constructor(
    homeserverUrl: string,
    private readonly accessToken: string,
    private readonly timeoutMs: number,
  ) {
    this.base = homeserverUrl.replace(/\/+$/, "");
  }

  async put(path: string, body: unknown): Promise<{ event_id: string }> {
    let answer: { status: number; text: string; retryAfter: unknown };
    try {
      const response = await request(this.base + path, {
        method: "PUT",
        dispatcher: this.agent,
        headers: { authorization: `Bearer ${this.accessToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const text = await response.body.text();
      answer = { status: response.statusCode, text, retryAfter: response.headers["retry-after"] };
    } catch (error) {
      throw new DeliveryError(`homeserver unreachable: ${(error as Error).message}`, "transient");
    }
    if (answer.status < 300) return JSON.parse(answer.text) as { event_id: string };
    throw refusal(answer.status, answer.text, answer.retryAfter);
  }

  /** Idempotent: stopping majordome twice is fine. */
  async close(): Promise<void> {
    if (!this.agent.closed) await this.agent.close();
  }
}

function refusal(status: number, text: string, retryAfterHeader: unknown): DeliveryError {
  let answer: { errcode?: string; error?: string; retry_after_ms?: number } = {};
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    // Not a Matrix error body (a proxy's page): the status says enough.
  }
  const what = `${answer.errcode ?? `HTTP ${status}`}: ${answer.error ?? text.slice(0, 200)}`;
  if (status === 429 || answer.errcode === "M_LIMIT_EXCEEDED") {
    const header = Number(retryAfterHeader);
    const retryAfterMs = answer.retry_after_ms ?? (Number.isFinite(header) ? header * 1000 : undefined);
    return new DeliveryError(what, "rate-limited", retryAfterMs);
  }
  return new DeliveryError(what, status >= 400 && status < 500 ? "permanent" : "transient");
}
