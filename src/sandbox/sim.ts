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
  const { nomad, consul } = cluster;
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
