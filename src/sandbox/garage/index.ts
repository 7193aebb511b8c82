export { startGarageDouble } from "./server.js";
export { GarageError } from "./errors.js";
export type { FailMatch, GarageApi } from "./faults.js";
export type { GarageDouble, GarageDoubleOptions } from "./types.js";
