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
    "restart-loop": {
      usage: "restart-loop <job|alloc> [times]",
      help: "a running allocation's task crashes and is restarted, 5 times by default (try the flaky job)",
      run: ([target, times]) => {
        const count = times === undefined ? 5 : Number(times);
        if (!target || !Number.isInteger(count) || count < 1 || count > 50) return usageOf("restart-loop");
        nomad.restartLoop(target, count);
        return `a task of ${target} crashes ${count} times, restarted each time as its restart policy allows`;
      },
    },
    "deployment-fail": {
      usage: "deployment-fail <job>",
      help: "someone else runs a new version of the job whose image does not exist: its deployment fails",
      run: ([job]) => {
        if (!job) return usageOf("deployment-fail");
        const version = nomad.failDeployment(job);
        return `version ${version} of ${job} registered outside majordome, with an image that cannot be pulled`;
      },
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
    drain: {
      usage: "drain <node> [off]",
      help: "someone else drains a node (no deadline), or cancels its drain (it stays ineligible)",
      run: ([node, off]) => {
        if (!node || (off !== undefined && off !== "off")) return usageOf("drain");
        if (off) nomad.cancelDrain(node);
        else nomad.drainNode(node);
        return off ? `the drain of ${node} is cancelled` : `${node} is draining`;
      },
    },
    eligibility: {
      usage: "eligibility <node> <on|off>",
      help: "mark a node eligible or ineligible for new allocations",
      run: ([node, state]) => {
        if (!node || (state !== "on" && state !== "off")) return usageOf("eligibility");
        nomad.setEligibility(node, state === "on");
        return `${node} is ${state === "on" ? "eligible" : "ineligible"} for new allocations`;
      },
    },
    burst: {
      usage: "burst <node> <n>",
      help: "an alert storm: n small allocations are placed on the node, then it goes down",
      run: async ([node, n]) => {
        const count = Number(n);
        if (!node || !Number.isInteger(count) || count < 1 || count > 2000) return usageOf("burst");
        await nomad.burst(node, count);
        return `${count} allocations of storm-${node} ran on ${node}, and ${node} is down`;
      },
    },
    check: {
      usage: "check <service> <passing|warning|critical> [node]",
      help: "set a Consul health check's status (registered on the node, node-1 by default, if new)",
      run: ([service, status, node = "node-1"]) => {
        if (!service || (status !== "passing" && status !== "warning" && status !== "critical"))
          return usageOf("check");
        const checkId = `service:${service}`;
        try {
          consul.setCheck(checkId, status);
        } catch (error) {
          if (!/no check/.test((error as Error).message)) throw error;
          // Not registered yet: as Nomad would register a job's service and its check.
          consul.registerService({
            node,
            service,
            checks: [{ checkId, name: `${service} health`, status }],
          });
        }
        return `check ${checkId} is ${status}`;
      },
    },
    consul: {
      usage: "consul <down|up>",
      help: "Consul stops answering (majordome says so after a minute), or answers again",
      run: ([state]) => {
        if (state !== "down" && state !== "up") return usageOf("consul");
        consul.unavailable(state === "down");
        return `Consul is ${state === "down" ? "unreachable" : "reachable again"}`;
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
        "Jobs to deploy: web (healthy), worker (three groups), broken (its image cannot be pulled), flaky (restarts up to 10 times).",
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
