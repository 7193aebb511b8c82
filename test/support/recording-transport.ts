import type { MessageContent } from "../../src/chat/message.js";
import type { ChatTransport, DeliveryError } from "../../src/chat/transport.js";

/** Records what reaches the "homeserver"; answers the same event ID for the same txnId, as Matrix does. */
export class RecordingTransport implements ChatTransport {
  readonly events: Array<{ roomId: string; type: string; content: MessageContent; eventId: string }> = [];
  private readonly byTxn = new Map<string, string>();
  failures: DeliveryError[] = [];

  async sendEvent(roomId: string, type: string, content: MessageContent, txnId: string): Promise<string> {
    const failure = this.failures.shift();
    if (failure) throw failure;
    const known = this.byTxn.get(txnId);
    if (known) return known;
    const eventId = `$ev${this.events.length}`;
    this.byTxn.set(txnId, eventId);
    this.events.push({ roomId, type, content, eventId });
    return eventId;
  }

  async redactEvent(): Promise<string> {
    return "$redaction";
  }
}
