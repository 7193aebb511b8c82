import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface MetricsSources {
  outboxDepth(): number;
  /** Seconds since the sync position was last stored (NaN before the first). */
  syncAgeSeconds(): number;
  inboxPending(): number;
}

/** Prometheus metrics, on a registry of majordome's own. */
export class Metrics {
  readonly registry = new Registry();
  readonly commands = new Counter({
    name: "majordome_commands_total",
    help: "Commands handled, by command name and outcome",
    labelNames: ["command", "outcome"] as const,
    registers: [this.registry],
  });
  readonly commandSeconds = new Histogram({
    name: "majordome_command_duration_seconds",
    help: "Time from picking a command up to its answer being queued",
    labelNames: ["command"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: "majordome_matrix_rate_limited_total",
    help: "HTTP 429 / M_LIMIT_EXCEEDED answers from the homeserver",
    registers: [this.registry],
  });
  readonly eventLag = new Histogram({
    name: "majordome_event_lag_seconds",
    help: "Time from the homeserver's timestamp of an event to majordome accepting it",
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [this.registry],
  });

  constructor(sources: MetricsSources) {
    new Gauge({
      name: "majordome_outbox_depth",
      help: "Messages waiting to be sent",
      registers: [this.registry],
      collect() {
        this.set(sources.outboxDepth());
      },
    });
    new Gauge({
      name: "majordome_sync_age_seconds",
      help: "Seconds since the last completed sync with the homeserver (the sync lag)",
      registers: [this.registry],
      collect() {
        this.set(sources.syncAgeSeconds());
      },
    });
    new Gauge({
      name: "majordome_inbox_pending",
      help: "Events accepted but not yet handled",
      registers: [this.registry],
      collect() {
        this.set(sources.inboxPending());
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: "majordome_" });
  }
}
