import {
  LogLevel,
  LogService,
  MatrixClient,
  MatrixError,
  type ICryptoStorageProvider,
  type IStorageProvider,
} from "matrix-bot-sdk";
import type { Logger } from "pino";
import { DeliveryError } from "../transport.js";

export type EmitFn = (emitEventType: string, ...payload: unknown[]) => Promise<void>;

/**
 * matrix-bot-sdk's own sync loop, with two changes that make inbound handling at-least-once:
 * every event is handed to `emit`, which is awaited (the SDK's EventEmitter does not await listeners),
 * and the sync token is stored only after the whole batch went through `emit`.
 */
export class AwaitedSyncClient extends MatrixClient {
  constructor(
    homeserverUrl: string,
    accessToken: string,
    storage: IStorageProvider,
    private readonly emitAwaited: EmitFn,
    cryptoStore?: ICryptoStorageProvider,
  ) {
    super(homeserverUrl, accessToken, storage, cryptoStore);
    this.persistTokenAfterSync = true;
  }

  protected override startSyncInternal(): Promise<void> {
    return this.startSync(this.emitAwaited);
  }
}

/** Maps an SDK failure to what the outbox needs to know: wait and retry, retry later, or give up. */
export function deliveryError(error: unknown): DeliveryError {
  if (error instanceof DeliveryError) return error;
  if (error instanceof MatrixError) {
    if (error.statusCode === 429 || error.errcode === "M_LIMIT_EXCEEDED") {
      return new DeliveryError(error.message, "rate-limited", error.retryAfterMs);
    }
    const permanent = error.statusCode >= 400 && error.statusCode < 500;
    return new DeliveryError(error.message, permanent ? "permanent" : "transient");
  }
  const status = (error as { statusCode?: unknown })?.statusCode;
  if (typeof status === "number") {
    return new DeliveryError(
      `HTTP ${status}`,
      status >= 400 && status < 500 && status !== 429 ? "permanent" : "transient",
    );
  }
  return new DeliveryError(error instanceof Error ? error.message : String(error), "transient");
}

/**
 * Sends the SDK's own logging to majordome's logger (warnings and errors only). Once majordome is
 * stopping, the SDK's complaints about its last long-poll being cut are only debug.
 */
export function routeSdkLogs(log: Logger, stopping: () => boolean = () => false): void {
  const child = log.child({ module: "matrix-bot-sdk" });
  const text = (parts: unknown[]) =>
    parts
      .map((p) => (p instanceof Error ? p.message : typeof p === "string" ? p : JSON.stringify(p)))
      .join(" ");
  LogService.setLogger({
    trace: () => undefined,
    debug: () => undefined,
    info: (module: string, ...parts: unknown[]) => child.debug({ sdkModule: module }, text(parts)),
    warn: (module: string, ...parts: unknown[]) => child.warn({ sdkModule: module }, text(parts)),
    // The SDK logs every error answer, including the 404 it expects and tolerates for missing account data.
    error: (module: string, ...parts: unknown[]) => {
      const line = text(parts);
      if (line.includes('"M_NOT_FOUND"') || stopping()) child.debug({ sdkModule: module }, line);
      else child.warn({ sdkModule: module }, line);
    },
  });
  LogService.setLevel(LogLevel.WARN);
}
