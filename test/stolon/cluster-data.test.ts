/**
 * Parsing Stolon's cluster data without losing anything, and the pre-flight decisions made from it.
 * The samples in shared/reference/stolon/ are CONSTRUCTED from Stolon's Go struct JSON tags (no real
 * capture of a Consul-backed cluster exists); these tests use them as the shape Stolon writes.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isLosslessNumber, parse } from "lossless-json";
import { describe, expect, it } from "vitest";
import { describeCluster, preflightOf, type LiveComponents } from "../../src/backends/stolon/analysis.js";
import {
  parseClusterData,
  serializeClusterData,
  withForceFail,
  type ClusterDataDocument,
} from "../../src/backends/stolon/cluster-data.js";
import { referenceDir } from "../support/reference.js";
import { deletePath, getPath, setPath } from "./support.js";

const reference = referenceDir();
const sample = (): string => readFileSync(join(reference!, "stolon", "clusterdata.constructed.json"), "utf8");

function parsed(text: string): ClusterDataDocument {
  const result = parseClusterData(text);
  if (!result.ok) throw new Error(result.reason);
  return result.doc;
}

/** The sample as an object, edited by `change`, as text again (plain JSON: the sample has no big numbers). */
function edited(change: (cd: unknown) => void): string {
  const cd = JSON.parse(sample()) as unknown;
  change(cd);
  return JSON.stringify(cd);
}

const allLive: LiveComponents = {
  keepers: ["keeper_a", "keeper_b", "keeper_c"],
  sentinels: ["c1d2e3f4"],
  proxies: ["1a2b3c4d", "5e6f7a8b"],
};

describe.skipIf(!reference)("Stolon cluster data (constructed samples)", () => {
  it("reads the sample: master keeper_a, keeper_b eligible, keeper_c not healthy (omitted flag = false)", () => {
    const { view } = parsed(sample());
    const status = describeCluster("pg", view, allLive, true, 42n);
    expect(status.master).toMatchObject({ db: "5a363897", keeper: "keeper_a", healthy: true });
    expect(status.master.address).toBe("10.0.0.1:5432");
    const [b, c] = status.standbys;
    expect(b).toMatchObject({
      keeper: "keeper_b",
      healthy: true,
      inSync: true,
      eligible: true,
      lagBytes: 0n,
    });
    expect(c).toMatchObject({
      keeper: "keeper_c",
      healthy: false,
      eligible: false,
      notEligible: "not healthy",
    });
    expect(c!.lagBytes).toBe(318767104n - 318700000n);
    expect(status.keepers.find((k) => k.uid === "keeper_c")).toMatchObject({ healthy: false, live: true });
  });

  it("round-trips losslessly: unknown fields, numbers past 2^53 and key order survive; forceFail is the only change", () => {
    const text = edited((cd) => {
      setPath(cd, "futureField", { nested: [1, "two", null] });
      setPath(cd, "keepers.keeper_a.status.extra", "kept");
    }).replace(
      '"formatVersion":1',
      '"formatVersion":1,"bigCounter":18446744073709551615,"ratio":0.1000000000000000055511151231257827',
    );
    const doc = parsed(text);
    expect(serializeClusterData(doc.raw)).toBe(text);
    const written = serializeClusterData(withForceFail(doc.raw, "keeper_a"));
    const before = parse(text);
    const after = parse(written);
    expect(getPath(after, "keepers.keeper_a.status.forceFail")).toBe(true);
    deletePath(after, "keepers.keeper_a.status.forceFail");
    expect(after).toEqual(before);
    const big = getPath(after, "bigCounter");
    expect(isLosslessNumber(big) && big.value).toBe("18446744073709551615");
    expect(written).toContain('"bigCounter":18446744073709551615');
    expect(written).toContain('"ratio":0.1000000000000000055511151231257827');
    // The document read is not changed by preparing the write.
    expect(serializeClusterData(doc.raw)).toBe(text);
  });

  it("refuses what it cannot read, with the reason", () => {
    const cases: Array<[string, RegExp]> = [
      ['{"formatVersion":1,"cluster":{', /not JSON/],
      ["[1,2]", /not a JSON object/],
      [edited((cd) => deletePath(cd, "cluster.status.master")), /cluster\.status\.master/],
      [edited((cd) => setPath(cd, "cluster.status.master", "")), /no master database is set/],
      [edited((cd) => setPath(cd, "cluster.status.master", "deadbeef")), /names master database deadbeef/],
      [edited((cd) => deletePath(cd, "dbs.7c1e0a11.spec.keeperUID")), /dbs\.7c1e0a11\.spec\.keeperUID/],
      [edited((cd) => deletePath(cd, "keepers.keeper_a")), /keeper keeper_a is not among/],
      [edited((cd) => setPath(cd, "dbs.7c1e0a11.status.xLogPos", "lots")), /xLogPos/],
    ];
    for (const [text, reason] of cases) {
      const result = parseClusterData(text);
      expect(result.ok, text.slice(0, 60)).toBe(false);
      if (!result.ok) expect(result.reason).toMatch(reason);
    }
  });

  it("force-failing an unknown keeper is refused", () => {
    expect(() => withForceFail(parsed(sample()).raw, "keeper_z")).toThrow(
      /keeper_z is not in the cluster data/,
    );
  });

  it("pre-flight: eligible standbys, or a refusal naming why each standby does not qualify", () => {
    const ok = preflightOf(describeCluster("pg", parsed(sample()).view, allLive, true, 1n));
    expect(ok.refusal).toBeUndefined();
    expect(ok.eligible.map((s) => s.keeper)).toEqual(["keeper_b"]);

    const behind = edited((cd) => setPath(cd, "dbs.7c1e0a11.status.xLogPos", 318767104 - 2_000_000));
    const refused = preflightOf(describeCluster("pg", parsed(behind).view, allLive, true, 1n));
    expect(refused.refusal).toMatch(/no standby is eligible/);
    expect(refused.refusal).toMatch(/keeper_b: 2000000 bytes behind the master \(more than 1232896\)/);
    expect(refused.refusal).toMatch(/keeper_c: not healthy/);

    const unhealthyKeeper = edited((cd) => deletePath(cd, "keepers.keeper_b.status.healthy"));
    expect(
      preflightOf(describeCluster("pg", parsed(unhealthyKeeper).view, allLive, true, 1n)).refusal,
    ).toMatch(/keeper_b: not healthy/);

    const noSentinel = preflightOf(describeCluster("pg", parsed(sample()).view, allLive, false, 1n));
    expect(noSentinel.refusal).toMatch(/no sentinel is rewriting the cluster data/);

    const initializing = edited((cd) => setPath(cd, "cluster.status.phase", "initializing"));
    expect(preflightOf(describeCluster("pg", parsed(initializing).view, allLive, true, 1n)).refusal).toMatch(
      /phase initializing/,
    );
  });

  it("with synchronous replication, only a standby the master reports and wants in sync is eligible", () => {
    const sync = (reported: string[] | null, wanted: string[] | null) =>
      edited((cd) => {
        setPath(cd, "cluster.spec.synchronousReplication", true);
        setPath(cd, "dbs.5a363897.status.synchronousStandbys", reported);
        setPath(cd, "dbs.5a363897.spec.synchronousStandbys", wanted);
        setPath(cd, "keepers.keeper_c.status.healthy", true);
        setPath(cd, "dbs.9d2f3b22.status.healthy", true);
      });
    const eligible = (text: string) =>
      preflightOf(describeCluster("pg", parsed(text).view, allLive, true, 1n)).eligible.map((s) => s.keeper);
    expect(eligible(sync(["9d2f3b22"], ["9d2f3b22"]))).toEqual(["keeper_c"]);
    expect(eligible(sync(["9d2f3b22"], ["7c1e0a11"]))).toEqual([]);
    const none = preflightOf(describeCluster("pg", parsed(sync(null, null)).view, allLive, true, 1n));
    expect(none.refusal).toMatch(/not a synchronous standby of the master/);
  });

  it("a standby on a force-failed keeper or another timeline is not eligible", () => {
    const text = edited((cd) => {
      setPath(cd, "keepers.keeper_b.status.forceFail", true);
      setPath(cd, "keepers.keeper_c.status.healthy", true);
      setPath(cd, "dbs.9d2f3b22.status.healthy", true);
      setPath(cd, "dbs.9d2f3b22.status.timelineID", 2);
    });
    const status = describeCluster("pg", parsed(text).view, allLive, true, 1n);
    expect(status.standbys.map((s) => s.notEligible)).toEqual([
      "its keeper is being force-failed",
      "on another timeline than the master",
    ]);
  });
});
