import { cloneJson, isJsonObject, type JsonObject } from "./json.js";

/**
 * Content keys that survive redaction, per the spec's redaction algorithm for room version 11
 * (the version this double creates). Every other content key is removed; m.room.create keeps all.
 */
const KEPT_CONTENT: Readonly<Record<string, readonly string[]>> = {
  "m.room.member": ["membership", "join_authorised_via_users_server"],
  "m.room.join_rules": ["join_rule", "allow"],
  "m.room.power_levels": [
    "ban",
    "events",
    "events_default",
    "invite",
    "kick",
    "redact",
    "state_default",
    "users",
    "users_default",
  ],
  "m.room.history_visibility": ["history_visibility"],
  "m.room.redaction": ["redacts"],
};

export function redactContent(type: string, content: JsonObject): JsonObject {
  if (type === "m.room.create") return cloneJson(content);
  const redacted: JsonObject = {};
  for (const key of KEPT_CONTENT[type] ?? []) {
    const value = content[key];
    if (value !== undefined) redacted[key] = cloneJson(value);
  }
  // v11 also keeps third_party_invite.signed on member events.
  const invite = content.third_party_invite;
  if (type === "m.room.member" && isJsonObject(invite) && invite.signed !== undefined) {
    redacted.third_party_invite = { signed: cloneJson(invite.signed) };
  }
  return redacted;
}
