/** An event from a chat room, as the pipeline sees it (Matrix's ClientEvent, narrowed). */
export interface RoomEvent {
  roomId: string;
  eventId: string;
  sender: string;
  type: string;
  content: Record<string, unknown>;
  originServerTs: number;
  /** For redactions: the event being redacted. */
  redacts?: string;
}

export function relation(event: RoomEvent): { relType?: string; eventId?: string; key?: string } {
  const rel = event.content["m.relates_to"];
  if (typeof rel !== "object" || rel === null) return {};
  const r = rel as Record<string, unknown>;
  return {
    ...(typeof r.rel_type === "string" ? { relType: r.rel_type } : {}),
    ...(typeof r.event_id === "string" ? { eventId: r.event_id } : {}),
    ...(typeof r.key === "string" ? { key: r.key } : {}),
  };
}

/** The text of a plain message, or undefined for edits, notices and anything that is not a command. */
export function commandText(event: RoomEvent): string | undefined {
  if (event.type !== "m.room.message") return undefined;
  if (event.content.msgtype !== "m.text") return undefined;
  if (relation(event).relType === "m.replace") return undefined;
  return typeof event.content.body === "string" ? event.content.body : undefined;
}
