export { startConsulDouble } from "./server.js";
export type {
  CheckStatus,
  ConsulDouble,
  ConsulDoubleOptions,
  ServiceRegistration,
  TokenPolicy,
} from "./types.js";
