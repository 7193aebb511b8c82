export { startHomeserver } from "./server.js";
export { MatrixHttpError } from "./errors.js";
export type {
  ClientEvent,
  CreateRoomOptions,
  FailMatch,
  Homeserver,
  HomeserverOptions,
  RateLimit,
  RequestRecord,
  RoomPreset,
  UnsignedData,
} from "./types.js";
