import type { MessageContent } from "./message.js";

/** How the outbox reaches the homeserver; the Matrix front end implements it with matrix-bot-sdk. */
export interface ChatTransport {
  /** PUT /rooms/{roomId}/send/{type}/{txnId}: the same txnId answers the same event ID, so a resend is safe. */
  sendEvent(roomId: string, type: string, content: MessageContent, txnId: string): Promise<string>;
  redactEvent(roomId: string, eventId: string, txnId: string, reason?: string): Promise<string>;
}

export type DeliveryFailure = "rate-limited" | "transient" | "permanent";

export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly failure: DeliveryFailure,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}
