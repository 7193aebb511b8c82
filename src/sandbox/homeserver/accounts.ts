import { newAccessToken, newDeviceId } from "./ids.js";
import type { JsonObject, JsonValue } from "./json.js";

export interface Device {
  readonly userId: string;
  readonly deviceId: string;
  readonly token: string;
}

export interface AccountDataEntry {
  readonly type: string;
  readonly content: JsonObject;
  readonly pos: number;
}

export interface User {
  readonly userId: string;
  /** displayname, avatar_url and any custom profile field (spec v1.16). */
  readonly profile: Map<string, JsonValue>;
  readonly accountData: Map<string, AccountDataEntry>;
  readonly roomAccountData: Map<string, Map<string, AccountDataEntry>>;
  readonly filters: JsonObject[];
}

// The historical grammar (printable ASCII but ':'): federated servers still have such users, and tests
// need senders whose names are hostile (`*)(cn=*`) to prove they are refused further on.
const LOCALPART = /^[\x21-\x39\x3b-\x7e]+$/;

/** Users, their devices (one per access token), profiles, account data and stored filters. */
export class Accounts {
  private readonly users = new Map<string, User>();
  private readonly devices = new Map<string, Device>();

  constructor(private readonly serverName: string) {}

  userIdFor(localpartOrUserId: string): string {
    const userId = localpartOrUserId.startsWith("@")
      ? localpartOrUserId
      : `@${localpartOrUserId}:${this.serverName}`;
    // Users of other servers are accepted too: the double stands in for the federation, so that a
    // person from elsewhere (@mallory:evil.example) can join a room and talk, as they could for real.
    const colon = userId.indexOf(":");
    const localpart = userId.slice(1, colon);
    if (colon < 0 || userId.slice(colon + 1) === "") throw new Error(`${userId} is not a Matrix user ID`);
    if (!LOCALPART.test(localpart)) throw new Error(`invalid user id localpart: ${localpart}`);
    return userId;
  }

  register(localpartOrUserId: string, accessToken?: string): Device {
    const userId = this.userIdFor(localpartOrUserId);
    if (!this.users.has(userId)) {
      // Synapse gives new accounts their localpart as display name.
      const profile = new Map<string, JsonValue>([["displayname", userId.slice(1, userId.indexOf(":"))]]);
      this.users.set(userId, {
        userId,
        profile,
        accountData: new Map(),
        roomAccountData: new Map(),
        filters: [],
      });
    }
    const existing = accessToken
      ? this.devices.get(accessToken)
      : [...this.devices.values()].find((d) => d.userId === userId);
    if (existing) {
      if (existing.userId !== userId) throw new Error(`access token already belongs to ${existing.userId}`);
      return existing;
    }
    return this.addDevice(userId, undefined, accessToken);
  }

  addDevice(userId: string, deviceId?: string, token?: string): Device {
    const device = { userId, deviceId: deviceId ?? newDeviceId(), token: token ?? newAccessToken() };
    this.devices.set(device.token, device);
    return device;
  }

  removeDevice(token: string): void {
    this.devices.delete(token);
  }

  byToken(token: string): Device | undefined {
    return this.devices.get(token);
  }

  get(userId: string): User | undefined {
    return this.users.get(userId);
  }

  require(userId: string): User {
    const user = this.users.get(userId);
    if (!user) throw new Error(`unknown user ${userId}: registerUser() it first`);
    return user;
  }

  setAccountData(
    userId: string,
    roomId: string | undefined,
    type: string,
    content: JsonObject,
    pos: number,
  ): void {
    const user = this.require(userId);
    const entry = { type, content, pos };
    if (roomId === undefined) {
      user.accountData.set(type, entry);
      return;
    }
    const perRoom = user.roomAccountData.get(roomId) ?? new Map<string, AccountDataEntry>();
    perRoom.set(type, entry);
    user.roomAccountData.set(roomId, perRoom);
  }

  getAccountData(userId: string, roomId: string | undefined, type: string): AccountDataEntry | undefined {
    const user = this.users.get(userId);
    if (!user) return undefined;
    return roomId === undefined ? user.accountData.get(type) : user.roomAccountData.get(roomId)?.get(type);
  }
}
