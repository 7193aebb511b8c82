import { randomBytes, randomInt } from "node:crypto";

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

function randomFrom(alphabet: string, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** Room version 4+ event ids: `$` + unpadded URL-safe base64 of a sha256 (43 chars), no server part. */
export const newEventId = (): string => "$" + randomBytes(32).toString("base64url");
export const newRoomId = (serverName: string): string => `!${randomFrom(LETTERS, 18)}:${serverName}`;
export const newDeviceId = (): string => randomFrom(UPPER, 10);
export const newAccessToken = (): string => "mdt_" + randomBytes(24).toString("base64url");
