/** LdapDirectory.lookup latency against a real slapd: from the cache, and with a directory round trip. */
import { SystemClock } from "../src/clock.js";
import { LdapDirectory } from "../src/auth/ldap-directory.js";
import { startSlapd } from "../test/support/slapd.js";
import { percentile } from "./stats.js";

const ROUNDS = 1_000;

async function timeLookups(dir: LdapDirectory, fresh: boolean): Promise<number[]> {
  const names = ["alice", "bob", "carol", "dave"];
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    await dir.lookup(names[i % names.length] ?? "alice", { fresh });
    samples.push(performance.now() - start);
  }
  return samples.sort((a, b) => a - b);
}

export async function benchDirectory(): Promise<Record<string, number>> {
  const slapd = await startSlapd();
  const dir = new LdapDirectory({
    url: slapd.url,
    bindDn: slapd.serviceBindDn,
    bindPassword: slapd.servicePassword,
    userBase: slapd.userBase,
    groupBase: slapd.groupBase,
    clock: new SystemClock(),
  });
  try {
    await timeLookups(dir, true); // connect, bind, warm slapd and the cache
    const cached = await timeLookups(dir, false);
    const fresh = await timeLookups(dir, true);
    return {
      "directory.lookup.cached.p50_ms": percentile(cached, 50),
      "directory.lookup.cached.p99_ms": percentile(cached, 99),
      "directory.lookup.fresh.p50_ms": percentile(fresh, 50),
      "directory.lookup.fresh.p99_ms": percentile(fresh, 99),
      "directory.lookup.samples": ROUNDS,
    };
  } finally {
    await dir.close();
    await slapd.stop();
  }
}
