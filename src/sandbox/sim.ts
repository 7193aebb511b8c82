import type { SystemClock } from "../clock.js";
import type { SandboxCluster } from "./cluster.js";

const FAILURES = ["image-pull", "crash-loop", "oom", "unhealthy"] as const;

interface Control {
  usage: string;
  help: string;
  run(args: string[]): string | Promise<string>;
}

/** `sim:` lines: what a newcomer can make the simulated cluster do. Each answers in words. */
export function simControls(cluster: SandboxCluster, clock: SystemClock): (line: string) => Promise<string> {
  const { nomad, consul, stolon } = cluster;
  const controls: Record<string, Control> = {
    time: {
      usage: "time",
      help: "the simulated clock and its speed",
      run: () => `simulated time: ${new Date(clock.now()).toISOString()} (speed ${clock.speed}×)`,
    },
    fail: {
      usage: "fail <job> <group> <image-pull|crash-loop|oom|unhealthy>",
      help: "the group's next allocations fail that way (until `sim: clear <job>`)",
      run: ([job, group, kind]) => {
        if (!job || !group || !FAILURES.includes(kind as (typeof FAILURES)[number])) return usageOf("fail");
        nomad.failNextPlacement(job, group, kind as (typeof FAILURES)[number]);
        return `the next allocations of ${job} › ${group} will fail (${kind})`;
      },
    },
    clear: {
      usage: "clear [job]",
      help: "stop injecting failures",
      run: ([job]) => {
        nomad.clearFailures(job);
        return `no more injected failures${job ? ` for ${job}` : ""}`;
      },
    },
    oom: {
      usage: "oom <job|alloc>",
      help: "OOM-kill a running allocation's task",
      run: ([target]) =>
        target ? (nomad.oomKill(target), `OOM-killed a task of ${target}`) : usageOf("oom"),
    },
    crash: {
      usage: "crash <job|alloc> [exit code]",
      help: "make a running allocation's task exit",
      run: ([target, code]) =>
        target
          ? (nomad.failAllocation(target, code ? Number(code) : 1), `a task of ${target} exited`)
          : usageOf("crash"),
    },
    node: {
      usage: "node <down|up> <name>",
      help: "take a node down (its allocations are lost and rescheduled) or bring it back",
      run: ([state, name]) => {
        if (!name || (state !== "down" && state !== "up")) return usageOf("node");
        if (state === "down") nomad.nodeDown(name);
        else nomad.nodeUp(name);
        return `node ${name} is ${state}`;
      },
    },
    check: {
      usage: "check <service> <passing|warning|critical>",
      help: "set a Consul health check's status",
      run: ([service, status]) => {
        if (!service || (status !== "passing" && status !== "warning" && status !== "critical"))
          return usageOf("check");
        consul.setCheck(`service:${service}`, status);
        return `check service:${service} is ${status}`;
      },
    },
    keeper: {
      usage: "keeper <down|up> <keeper>",
      help: `stop or restart a Stolon keeper (${stolon.keepers.join(", ")}): its info key goes, its database turns unhealthy`,
      run: ([state, uid]) => {
        if (!uid || (state !== "down" && state !== "up")) return usageOf("keeper");
        if (state === "down") stolon.keeperDown(uid);
        else stolon.keeperUp(uid);
        return `keeper ${uid} is ${state}`;
      },
    },
    stolon: {
      usage: "stolon <status|pause|resume|lag|catch-up|corrupt|repair>",
      help: "the Stolon cluster: pause the sentinel, make the standbys fall behind, break its cluster data",
      run: async ([action]) => {
        switch (action) {
          case "status":
            return stolon.describe();
          case "pause":
          case "resume":
            if (action === "pause") stolon.pause();
            else stolon.resume();
            return `the sentinel is ${action === "pause" ? "paused: the cluster data is no longer rewritten" : "running"}`;
          case "lag":
          case "catch-up":
            stolon.noSyncStandby(action === "lag");
            return action === "lag"
              ? "the standbys fall behind the master: none is in sync"
              : "the standbys catch up";
          case "corrupt":
            await stolon.corrupt();
            return "the cluster data is now something Stolon cannot read";
          case "repair":
            await stolon.repair();
            return "the last good cluster data is back";
          default:
            return usageOf("stolon");
        }
      },
    },
  };
  const usageOf = (name: string) => `! usage: sim: ${controls[name]!.usage}`;
  return async (line) => {
    const [name = "help", ...args] = line.trim().split(/\s+/);
    if (name === "help" || name === "") {
      return [
        "sim: controls drive the simulated cluster:",
        ...Object.values(controls).map((c) => `  sim: ${c.usage.padEnd(52)} ${c.help}`),
        `Simulated time runs ${clock.speed}× real time (majordome sandbox --speed N); "sleep N" waits N simulated seconds.`,
        "Jobs to deploy: web (healthy), worker (three groups), broken (its image cannot be pulled).",
      ].join("\n");
    }
    const control = controls[name];
    if (!control) return `! unknown sim control "${name}"; "sim: help" lists them`;
    try {
      return await control.run(args);
    } catch (error) {
      return `! ${(error as Error).message}`;
    }
  };
}
