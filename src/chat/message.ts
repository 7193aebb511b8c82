import MarkdownIt from "markdown-it";

/** What handlers say: Markdown (raw HTML is escaped), and who must be pinged. */
export interface Message {
  markdown: string;
  mentions?: string[];
  /** Extra content keys (namespaced), e.g. the ID of the approval request a message carries. */
  extra?: Record<string, unknown>;
}

export type MessageContent = Record<string, unknown>;

const markdown = new MarkdownIt({ html: false, linkify: false, breaks: true });

/** Matrix caps an event at 65,535 bytes; body and formatted_body each get a share with room to spare. */
const MAX_PART_BYTES = 24_000;

export function message(markdownText: string, mentions?: string[]): Message {
  return mentions && mentions.length > 0 ? { markdown: markdownText, mentions } : { markdown: markdownText };
}

/** The one place where a Message becomes an `m.notice` event content. */
export function toNoticeContent(msg: Message): MessageContent {
  const body = truncate(msg.markdown, MAX_PART_BYTES);
  const html = truncate(markdown.render(body).trimEnd(), MAX_PART_BYTES);
  return {
    msgtype: "m.notice",
    body,
    format: "org.matrix.custom.html",
    formatted_body: html,
    "m.mentions": { user_ids: [...new Set(msg.mentions ?? [])] },
    ...msg.extra,
  };
}

export function replyContent(msg: Message, inReplyTo: string): MessageContent {
  // No legacy reply fallback (removed from the spec in v1.13): the relation alone makes it a reply.
  return { ...toNoticeContent(msg), "m.relates_to": { "m.in_reply_to": { event_id: inReplyTo } } };
}

export function threadContent(msg: Message, rootEventId: string): MessageContent {
  return {
    ...toNoticeContent(msg),
    "m.relates_to": {
      rel_type: "m.thread",
      event_id: rootEventId,
      is_falling_back: true,
      "m.in_reply_to": { event_id: rootEventId },
    },
  };
}

export function editContent(msg: Message, originalEventId: string): MessageContent {
  const replacement = toNoticeContent(msg);
  return {
    msgtype: "m.notice",
    body: `* ${replacement.body as string}`,
    format: "org.matrix.custom.html",
    formatted_body: `* ${replacement.formatted_body as string}`,
    "m.new_content": replacement,
    // Mentions already notified by the original are not repeated by the edit.
    "m.mentions": {},
    "m.relates_to": { rel_type: "m.replace", event_id: originalEventId },
  };
}

export function reactionContent(targetEventId: string, key: string): MessageContent {
  return { "m.relates_to": { rel_type: "m.annotation", event_id: targetEventId, key } };
}

/** Reaction keys compared without variation selectors: ✅ and ✅️ are the same. */
export function normalizeReactionKey(key: string): string {
  return key.replace(/[\uFE0E\uFE0F]/g, "");
}

export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>~]/g, "\\$&");
}

/** Inline code that survives any content (backticks inside included). */
export function code(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  return `${fence}${longest > 0 ? " " : ""}${text}${longest > 0 ? " " : ""}${fence}`;
}

export function table(header: string[], rows: string[][]): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
  return [
    `| ${header.map(cell).join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ].join("\n");
}

function truncate(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const marker = "\n\n… (truncated)";
  let cut = text.slice(0, maxBytes - marker.length);
  while (Buffer.byteLength(cut) > maxBytes - marker.length) cut = cut.slice(0, -64);
  return cut + marker;
}
