import type { Logger } from "pino";
import { allCommands } from "../handlers/index.js";
import type { Directory } from "./auth/directory.js";
import { identifier } from "./auth/identify.js";
import { Inbox } from "./chat/inbox.js";
import { MatrixFrontEnd } from "./chat/matrix/front-end.js";
import { Outbox } from "./chat/outbox.js";
import type { Clock } from "./clock.js";
import { PolicyAuthorizer } from "./commands/authorize.js";
import { JobFiles, NomadClient } from "./backends/nomad/index.js";
import { ConsulSecrets, consulClient, type ConsulOptions } from "./backends/consul-secrets.js";
import { GarageAdmin } from "./backends/garage.js";
import { PostgresBackend } from "./backends/postgres.js";
import { stolonServices } from "./backends/stolon/index.js";
import { resumers } from "../handlers/resume.js";
import { AlertEngine } from "./alerts/engine.js";
import { rulesFrom } from "./alerts/rules.js";
import { scheduleAlertWork } from "./alerts/schedule.js";
import { startAlertSources } from "./alerts/sources/index.js";
import type { CommandSpec } from "./commands/declare.js";
import { loadPolicies, type Policies } from "./auth/policy.js";
import { message } from "./chat/message.js";
import type { Services } from "./commands/context.js";
import { Router } from "./commands/router.js";
import type { Config } from "./config/schema.js";
import { crashPoint } from "./crash.js";
import { Metrics } from "./http/metrics.js";
import { startHttpServer, type HealthReport, type HttpServer } from "./http/server.js";
import { Pipeline } from "./pipeline.js";
import { FileStateStore } from "./state/file-store.js";
import { ConsulStateStore } from "./state/consul-store.js";
import { Leadership, defaultInstanceId } from "./state/leadership.js";
import { ActionJournal } from "./state/journal.js";
import { resumeUnfinished, type Resumer } from "./state/resume.js";
import type { StateStore } from "./state/store.js";

export interface AppDeps {
  /**
   * Called when this instance loses the leader lock: it must stop acting at once (majordome's main
   * exits, and Nomad restarts it as a standby). Default: throw, which nothing should reach.
   */
  onDemoted?: () => void;
  /** Aborting it while this instance waits as a standby gives up waiting (startMajordome throws StoppedAsStandby). */
  signal?: AbortSignal;
  config: Config;
  clock: Clock;
  log: Logger;
  directory: Directory;
  /** Defaults to the policies in config.policies_dir. */
  policies?: Policies;
  /** Why PostgreSQL is absent (the sandbox without PostgreSQL binaries). */
  postgresUnavailable?: string;
  /** Defaults to every shipped command (tests add their own). */
  commands?: CommandSpec[];
  /** Defaults to the store the config names. */
  store?: StateStore;
  /** Start the /health and /metrics server (default true). */
  http?: boolean;
  resumers?: Map<string, Resumer>;
}

export interface Majordome {
  readonly botUserId: string;
  readonly pipeline: Pipeline;
  readonly outbox: Outbox;
  readonly services: Services;
  readonly metrics: Metrics;
  readonly http?: HttpServer;
  health(): Promise<HealthReport>;
  /** Resolves after the first sync with the homeserver completed (start() does not wait for it). */
  synced(): Promise<void>;
  /** Whether the event has been handled to the end (its answers are queued in the outbox). */
  handled(eventId: string): boolean;
  /** Stops taking events, finishes what is in flight, flushes the outbox (within the grace time). */
  stop(): Promise<void>;
}

/** Stopped while waiting as a standby: nothing was started, nothing is left to stop. */
export class StoppedAsStandby extends Error {
  constructor() {
    super("stopped while standing by");
  }
}

/** Wiring only: config → state → chat → commands. */
export async function startMajordome(deps: AppDeps): Promise<Majordome> {
  const { config, clock, log } = deps;
  const { timings } = config;
  const leadership = config.state.leader.enabled ? leadershipFrom(config, clock, log) : undefined;
  // Until it has started, an instance is a healthy standby (with a leader lock) or not ready yet.
  const leaderHealth: { check?: () => Promise<HealthReport> } = {};
  const beforeStart: HealthReport = leadership
    ? { healthy: true, role: "standby", reasons: [] }
    : { healthy: false, role: "leader", reasons: ["starting"] };
  const health = (): Promise<HealthReport> => leaderHealth.check?.() ?? Promise.resolve(beforeStart);
  // What the gauges read is there once this instance leads; a standby reports it empty.
  const gauges = { outboxDepth: () => 0, syncAgeSeconds: () => NaN, inboxPending: () => 0 };
  const metrics = new Metrics({
    outboxDepth: () => gauges.outboxDepth(),
    syncAgeSeconds: () => gauges.syncAgeSeconds(),
    inboxPending: () => gauges.inboxPending(),
  });
  const http =
    deps.http === false ? undefined : await startHttpServer(config.http.listen, health, metrics.registry);
  if (leadership && !(await becomeLeader(leadership, log, deps.signal))) {
    await http?.close();
    throw new StoppedAsStandby();
  }
  const watchDemotion = leadership?.onChange((role) => {
    if (role === "leader") return;
    log.error("lost the leader lock: stepping down at once");
    (deps.onDemoted ?? demotionUnhandled)();
  });

  const store = deps.store ?? (await storeFrom(config, clock, log, leadership));
  const journal = new ActionJournal(store, clock, async () => {
    await leadership?.confirm();
  });
  const inbox = new Inbox(store, config.state.processed_events_kept);
  const rooms = [
    ...new Set([
      ...config.matrix.command_rooms,
      ...(config.matrix.alert_room ? [config.matrix.alert_room] : []),
    ]),
  ];

  const frontEnd = new MatrixFrontEnd({
    homeserverUrl: config.matrix.homeserver_url,
    accessToken: config.matrix.access_token,
    rooms,
    userDomain: config.matrix.user_domain,
    trustedInviters: Object.keys(config.directory.explicit),
    encryption: config.matrix.encryption ? { cryptoStorePath: config.matrix.crypto_store } : null,
    syncTimeoutMs: timings.sync_timeout,
    sendTimeoutMs: timings.backend_request_timeout,
    store,
    clock,
    log,
  });

  const outbox = new Outbox(
    store,
    frontEnd,
    clock,
    timings,
    log,
    {
      rateLimited: () => metrics.rateLimited.inc(),
      sent: () => crashPoint("message-sent"),
    },
    config.matrix.send_concurrency,
  );
  gauges.outboxDepth = () => outbox.depth();
  gauges.syncAgeSeconds = () => (frontEnd.lastSyncAt() ? (clock.now() - frontEnd.lastSyncAt()) / 1000 : NaN);
  gauges.inboxPending = () => inbox.pendingCount();

  const policies = deps.policies ?? (await loadPolicies(config.policies_dir));
  const authorizer = new PolicyAuthorizer(policies);
  const router = new Router(deps.commands ?? allCommands, config.matrix.command_prefix);
  const nomad = config.nomad && {
    client: new NomadClient({
      address: config.nomad.address,
      namespace: config.nomad.namespace,
      timeoutMs: timings.nomad_request_timeout,
      clock,
      ...(config.nomad.token ? { token: config.nomad.token } : {}),
      ...(config.nomad.region ? { region: config.nomad.region } : {}),
      ...(config.nomad.tls ? { tls: config.nomad.tls } : {}),
    }),
    deployTimeoutMs: timings.deploy_timeout,
    ...(config.nomad.jobs_dir
      ? { jobFiles: new JobFiles(config.nomad.jobs_dir, config.nomad.jobs, config.nomad.git_pull) }
      : {}),
  };
  const provisioning = {
    ...(deps.postgresUnavailable ? { postgresUnavailable: deps.postgresUnavailable } : {}),
    ...(config.consul
      ? {
          secrets: new ConsulSecrets(consulClient(consulOptions(config, "secrets")), config.secrets),
        }
      : {}),
    ...(config.postgres
      ? {
          postgres: new PostgresBackend({
            host: config.postgres.host,
            port: config.postgres.port,
            user: config.postgres.user,
            password: config.postgres.password,
            database: config.postgres.database,
            ssl: config.postgres.ssl,
            logger: log,
          }),
        }
      : {}),
    ...(config.garage
      ? {
          garage: new GarageAdmin({
            adminUrl: config.garage.admin_url,
            adminToken: config.garage.admin_token,
            s3Endpoint: config.garage.s3_endpoint,
            s3Region: config.garage.s3_region,
            timeoutMs: timings.backend_request_timeout,
            clock,
          }),
        }
      : {}),
  };
  const stolon =
    config.stolon &&
    stolonServices(consulOptions(config, "stolon"), config.stolon, clock, timings.backend_request_timeout);
  const alertRoom = config.matrix.alert_room;
  const alerts =
    config.alerts.enabled && alertRoom
      ? new AlertEngine({
          store,
          outbox,
          clock,
          log: log.child({ component: "alerts" }),
          roomId: alertRoom,
          rules: rulesFrom(config.alerts.rules),
          timings: {
            groupWaitMs: config.alerts.group_wait,
            groupIntervalMs: config.alerts.group_interval,
            repeatIntervalMs: config.alerts.repeat_interval,
            editIntervalMs: config.alerts.edit_interval,
            reactionSilenceMs: config.alerts.reaction_silence,
            historyMs: config.alerts.history,
          },
          async mayAct(sender, policyKey) {
            const decision = authorizer.decide(await services.identify(sender), [policyKey], alertRoom);
            if (decision.outcome === "allow") return { allowed: true };
            return {
              allowed: false,
              reason: decision.outcome === "deny" ? decision.reason : `${policyKey} needs an approval`,
            };
          },
          async onCall() {
            const group = config.alerts.on_call_group;
            if (!group) return [];
            const members = await deps.directory.groupMembers(group);
            return members.map((uid) => `@${uid}:${config.matrix.user_domain}`);
          },
          runCommand: (roomId, sender, line, causeEventId, threadRoot) =>
            pipeline.runOnBehalf(
              {
                roomId,
                sender,
                eventId: causeEventId,
                type: "m.room.message",
                content: { msgtype: "m.text", body: `${config.matrix.command_prefix}${line}` },
                originServerTs: clock.now(),
              },
              line,
              threadRoot,
            ),
        })
      : undefined;
  const services: Services = {
    provisioning,
    ...(alerts ? { alerts } : {}),
    ...(stolon ? { stolon } : {}),
    ...(nomad ? { nomad } : {}),
    clock,
    store,
    journal,
    outbox,
    router,
    authorizer,
    policies,
    identify: identifier(deps.directory, {
      homeserverDomain: config.matrix.user_domain,
      explicit: config.directory.explicit,
    }),
  };

  const pending = await inbox.load();
  await outbox.load();
  const botUserId = await frontEnd.connect();
  const pipeline = new Pipeline({
    botUserId,
    prefix: config.matrix.command_prefix,
    commandTimeoutMs: timings.command_timeout,
    router,
    inbox,
    outbox,
    authorizer,
    services,
    clock,
    log,
    reactionsOn: (roomId, eventId) => frontEnd.reactionsOn(roomId, eventId),
    hooks: {
      commandFinished(name, outcome, ms) {
        metrics.commands.inc({ command: name, outcome });
        metrics.commandSeconds.observe({ command: name }, ms / 1000);
      },
      async brokeGlass(text) {
        const room = config.matrix.alert_room ?? config.matrix.command_rooms[0]!;
        await outbox.send(room, message(text));
      },
    },
  });

  if (alerts) {
    await alerts.load();
    pipeline.onReaction((event) => alerts.onReaction(event));
  }
  const alertWork =
    alerts &&
    scheduleAlertWork(
      alerts,
      { reminders: config.alerts.reminder_schedule, digest: config.alerts.digest_schedule },
      log,
    );
  outbox.start();
  const alertSources =
    alerts &&
    (await startAlertSources({
      config,
      store,
      clock,
      log,
      sink: (signal) => alerts.ingest(signal),
      offer: (signal) => alerts.offer(signal),
      durable: () => alerts.flush(),
      reconcile: (kinds, open, reason) => alerts.reconcile(kinds, open, reason),
      directory: deps.directory,
      ...(nomad ? { nomad: nomad.client } : {}),
      ...(config.consul ? { consul: consulOptions(config, "alerts") } : {}),
      ...(stolon ? { stolon } : {}),
    }));
  await resumeUnfinished(journal, deps.resumers ?? resumers(services), outbox, log);
  await pipeline.resume(pending);
  await frontEnd.start(async (event) => {
    metrics.eventLag.observe(Math.max(0, clock.now() - event.originServerTs) / 1000);
    await pipeline.submit(event);
    crashPoint("event-accepted");
  });
  log.info({ userId: botUserId, rooms, resumed: pending.length }, "majordome started");

  leaderHealth.check = async (): Promise<HealthReport> => {
    const reasons: string[] = [];
    const lastSync = frontEnd.lastSyncAt();
    if (!lastSync) reasons.push("not synced with the homeserver yet");
    else if (clock.now() - lastSync > timings.health_sync_stale) {
      reasons.push(`no completed sync for ${Math.round((clock.now() - lastSync) / 1000)} s`);
    }
    if (!(await store.healthy())) reasons.push("state store unreachable");
    return { healthy: reasons.length === 0, role: "leader", reasons };
  };

  return {
    botUserId,
    pipeline,
    outbox,
    services,
    metrics,
    ...(http ? { http } : {}),
    health,
    synced: () => frontEnd.firstSynced,
    handled: (eventId) => inbox.isDone(eventId),
    async stop() {
      // Releasing the lock at the end is a step down too, not a demotion to act on.
      watchDemotion?.();
      frontEnd.stop();
      const grace = new AbortController();
      await Promise.race([
        (async () => {
          await pipeline.stop();
          await outbox.drained();
        })(),
        clock.sleep(timings.shutdown_grace, grace.signal).catch(() => undefined),
      ]);
      grace.abort();
      await alertSources?.stop();
      await alertWork?.stop();
      await alerts?.close();
      await outbox.stop();
      await frontEnd.close();
      await http?.close();
      // Last: the lock guards the writes above; releasing it lets the standby take over without lock delay.
      await leadership?.release();
      await store.close();
      await deps.directory.close();
      await nomad?.client.close();
      await provisioning.postgres?.close();
    },
  };
}

function consulOptions(config: Config, what: string): ConsulOptions {
  if (!config.consul) throw new Error(`${what} needs the consul section in the config`);
  const { address, token, datacenter, tls } = config.consul;
  return {
    address,
    ...(token ? { token } : {}),
    ...(datacenter ? { datacenter } : {}),
    ...(tls ? { tls } : {}),
  };
}

function leadershipFrom(config: Config, clock: Clock, log: Logger): Leadership {
  const { leader } = config.state;
  return new Leadership({
    consul: consulOptions(config, "state.leader"),
    clock,
    logger: log.child({ component: "leadership" }),
    lockKey: leader.lock_key,
    instanceId: defaultInstanceId(),
    sessionTtlMs: leader.session_ttl,
    lockDelayMs: leader.lock_delay,
  });
}

async function storeFrom(
  config: Config,
  clock: Clock,
  log: Logger,
  leadership: Leadership | undefined,
): Promise<StateStore> {
  const { state } = config;
  if (state.backend === "file") return FileStateStore.open(state.path, { fsync: state.fsync });
  return new ConsulStateStore({
    consul: consulOptions(config, "state.backend consul"),
    prefix: state.consul_prefix,
    clock,
    logger: log.child({ component: "state" }),
    maxValueBytes: state.consul_max_value_bytes,
    auditMaxAgeMs: state.audit_max_age,
    ...(leadership ? { guard: leadership.guard() } : {}),
  });
}

/** Waits, as a standby, until this instance holds the lock; false if `signal` aborts first. */
async function becomeLeader(leadership: Leadership, log: Logger, signal?: AbortSignal): Promise<boolean> {
  const elected = new Promise<void>((resolve) => {
    const unsubscribe = leadership.onChange((role) => {
      if (role !== "leader") return;
      unsubscribe();
      resolve();
    });
  });
  const aborted = new Promise<void>((resolve) =>
    signal?.addEventListener("abort", () => resolve(), { once: true }),
  );
  leadership.start();
  log.info("standing by until this instance holds the leader lock");
  await Promise.race([elected, aborted]);
  if (leadership.isLeader()) {
    log.info("elected leader");
    return true;
  }
  await leadership.stop();
  return false;
}

function demotionUnhandled(): never {
  throw new Error("lost the leader lock and nothing handles it");
}
