import type { Accounts } from "./accounts.js";
import type { RoomStore } from "./store.js";

/** What route handlers share. */
export interface Services {
  readonly accounts: Accounts;
  readonly store: RoomStore;
  /** The server's own URL (known once it listens), for login's well_known. */
  readonly baseUrl: () => string;
  /** Told of each /sync answer that carries timeline events (benchmarks time the bot from there). */
  readonly syncDelivered: (userId: string, eventIds: string[]) => void;
}

export const V3 = "/_matrix/client/v3";
export const V1 = "/_matrix/client/v1";
