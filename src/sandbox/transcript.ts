import type { ClientEvent } from "./homeserver/index.js";

/**
 * What the sandbox prints: each message of the bot gets a number (`[N] …`); an edit reprints it as
 * `[N] (edited) …`. People refer to messages by these numbers (`bob: +✅ 3`).
 */
export class Transcript {
  private readonly numbers = new Map<string, number>();
  private readonly eventIds: string[] = [];

  constructor(
    private readonly botUserId: string,
    private readonly write: (line: string) => void,
  ) {}

  observe(event: ClientEvent): void {
    if (event.sender !== this.botUserId || event.type !== "m.room.message") return;
    const content = event.content as Record<string, unknown>;
    const relates = content["m.relates_to"] as { rel_type?: string; event_id?: string } | undefined;
    if (relates?.rel_type === "m.replace" && relates.event_id) {
      const n = this.numbers.get(relates.event_id);
      const replacement = content["m.new_content"] as { body?: unknown } | undefined;
      if (n !== undefined) this.print(`[${n}] (edited) `, String(replacement?.body ?? content.body ?? ""));
      return;
    }
    this.eventIds.push(event.event_id);
    const n = this.eventIds.length;
    this.numbers.set(event.event_id, n);
    const thread =
      relates?.rel_type === "m.thread" && relates.event_id ? this.numbers.get(relates.event_id) : undefined;
    this.print(thread ? `[${n}] (thread of ${thread}) ` : `[${n}] `, String(content.body ?? ""));
  }

  eventIdOf(n: number): string | undefined {
    return this.eventIds[n - 1];
  }

  count(): number {
    return this.eventIds.length;
  }

  private print(prefix: string, body: string): void {
    const [first, ...rest] = body.split("\n");
    this.write([prefix + first, ...rest.map((line) => `    ${line}`)].join("\n"));
  }
}
