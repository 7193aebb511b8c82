import type { Logger } from "pino";
import type { Directory } from "../../auth/directory.js";
import type { NomadClient } from "../../backends/nomad/index.js";
import type { ConsulOptions } from "../../backends/consul-secrets.js";
import type { StolonServices } from "../../backends/stolon/index.js";
import type { Clock } from "../../clock.js";
import type { Config } from "../../config/schema.js";
import type { StateStore } from "../../state/store.js";
import type { SignalSink } from "../signal.js";
import { ConsulHealthSource, consulHealthApi } from "./consul-health.js";
import { NomadEventSource } from "./nomad-stream.js";
import { NOMAD_KINDS } from "./nomad-rules.js";
import type { AlertEngine } from "../engine.js";
import { ReachabilityMonitor, type Probe } from "./reachability.js";
import { StolonAlertSource } from "./stolon.js";

export interface AlertSourceDeps {
  config: Config;
  store: StateStore;
  clock: Clock;
  log: Logger;
  /** Takes a signal and stores it before resolving. */
  sink: SignalSink;
  /** Takes a signal without storing it yet (the Nomad stream's volume); `durable` stores what it took. */
  offer: SignalSink;
  durable: () => Promise<void>;
  /** A source's re-read: what is still wrong among its kinds (the rest recovered). */
  reconcile: AlertEngine["reconcile"];
  directory: Directory;
  nomad?: NomadClient;
  consul?: ConsulOptions;
  stolon?: StolonServices;
}

/** Starts every source the config has a backend for; `stop` ends them all. */
export async function startAlertSources(deps: AlertSourceDeps): Promise<{ stop(): Promise<void> }> {
  const { config, store, clock, sink } = deps;
  const settings = config.alerts.sources;
  const log = (source: string) => deps.log.child({ component: "alerts", source });
  const sources: Array<{ stop(): Promise<void> }> = [];
  const closers: Array<() => Promise<void>> = [];
  const probes: Probe[] = [];

  if (deps.nomad && settings.nomad.enabled) {
    const nomad = deps.nomad;
    const stream = new NomadEventSource({
      nomad,
      store,
      clock,
      sink: deps.offer,
      durable: deps.durable,
      reconciled: (open) => deps.reconcile(NOMAD_KINDS, open, "recovered while majordome was not watching"),
      log: log("nomad"),
      watchdogMs: settings.nomad.watchdog,
      rules: {
        restartLoopCount: settings.nomad.restart_loop_count,
        restartLoopWindowMs: settings.nomad.restart_loop_window,
      },
    });
    await stream.start();
    sources.push(stream);
    probes.push({ backend: "nomad", label: "Nomad", check: async () => void (await nomad.listJobs()) });
  }
  if (deps.consul && settings.consul.enabled) {
    const api = consulHealthApi(deps.consul, clock);
    closers.push(() => api.close());
    const health = new ConsulHealthSource({
      api,
      store,
      clock,
      sink,
      log: log("consul"),
      warning: settings.consul.warning,
    });
    await health.start();
    sources.push(health);
    probes.push({
      backend: "consul",
      label: "Consul",
      check: async (signal) => void (await api.checks(0, 0, signal)),
    });
  }
  if (deps.stolon && settings.stolon.enabled) {
    const stolon = new StolonAlertSource({
      kv: deps.stolon.kv,
      prefix: deps.stolon.prefix,
      clusters: deps.stolon.clusters,
      store,
      clock,
      sink,
      log: log("stolon"),
      keeperGoneAfterMs: config.stolon!.keeper_gone_after,
    });
    await stolon.start();
    sources.push(stolon);
  }
  if (config.ldap)
    probes.push({
      backend: "directory",
      label: "the directory",
      // Any fresh lookup goes to the server; whether the entry exists does not matter.
      check: async () => void (await deps.directory.lookup("majordome", { fresh: true })),
    });
  if (settings.reachability.enabled && probes.length) {
    const monitor = new ReachabilityMonitor({
      probes,
      clock,
      sink,
      log: log("reachability"),
      store,
      intervalMs: settings.reachability.interval,
      thresholdMs: settings.reachability.threshold,
    });
    await monitor.start();
    sources.push(monitor);
  }
  return {
    async stop() {
      await Promise.all(sources.map((source) => source.stop()));
      for (const close of closers) await close();
    },
  };
}
