/**
 * Authorization decision time against a real slapd: Matrix ID → directory user and groups → policy
 * decision, from the directory cache and with a directory round trip (as before an action runs).
 */
import { identifier } from "../src/auth/identify.js";
import { LdapDirectory } from "../src/auth/ldap-directory.js";
import { loadPolicies } from "../src/auth/policy.js";
import { SystemClock } from "../src/clock.js";
import { PolicyAuthorizer } from "../src/commands/authorize.js";
import { repoRoot } from "../test/support/paths.js";
import { directoryOptions, startSlapd } from "../test/support/slapd.js";
import { percentile } from "./stats.js";
import { join } from "node:path";

const ROUNDS = 1_000;
const SENDERS = ["@alice:deuxfleurs.fr", "@bob:deuxfleurs.fr", "@carol:deuxfleurs.fr", "@dave:deuxfleurs.fr"];
const KEYS = [["status"], ["deploy"], ["stop", "stop --purge"], ["db drop"]];

export async function benchAuthorization(): Promise<Record<string, number>> {
  const slapd = await startSlapd();
  const directory = new LdapDirectory(directoryOptions(slapd, new SystemClock()));
  const identify = identifier(directory, { homeserverDomain: "deuxfleurs.fr" });
  const authorizer = new PolicyAuthorizer(await loadPolicies(join(repoRoot(), "policies")));
  const decide = async (i: number, fresh: boolean) => {
    const identity = await identify(SENDERS[i % SENDERS.length]!, { fresh });
    return authorizer.decide(identity, KEYS[i % KEYS.length]!, "!ops:deuxfleurs.fr");
  };
  const time = async (fresh: boolean) => {
    const samples: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const start = performance.now();
      await decide(i, fresh);
      samples.push(performance.now() - start);
    }
    return samples.sort((a, b) => a - b);
  };
  try {
    await time(true); // connect, bind, warm slapd and the cache
    const cached = await time(false);
    const fresh = await time(true);
    return {
      "authz.decision.cached.p50_ms": percentile(cached, 50),
      "authz.decision.cached.p99_ms": percentile(cached, 99),
      "authz.decision.directory.p50_ms": percentile(fresh, 50),
      "authz.decision.directory.p99_ms": percentile(fresh, 99),
      "authz.decision.samples": ROUNDS,
    };
  } finally {
    await directory.close();
    await slapd.stop();
  }
}
