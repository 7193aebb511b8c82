import type { Txn } from "./store.js";
import type { Allocation, Deployment } from "./types.js";

/**
 * Placed, healthy and unhealthy counts of a deployment's groups, from its allocations (the state
 * store keeps them current on every plan and client update: updateDeploymentWithAlloc).
 */
export function refreshDeploymentCounts(
  tx: Txn,
  deployment: Deployment,
  extra: readonly Allocation[] = [],
): void {
  const allocs = new Map<string, Allocation>();
  for (const alloc of tx.store.allocs.values())
    if (alloc.DeploymentID === deployment.ID) allocs.set(alloc.ID, alloc);
  for (const alloc of extra) if (alloc.DeploymentID === deployment.ID) allocs.set(alloc.ID, alloc);
  let changed = false;
  for (const [group, state] of Object.entries(deployment.TaskGroups)) {
    const mine = [...allocs.values()].filter((a) => a.TaskGroup === group);
    const next = {
      PlacedAllocs: mine.length,
      HealthyAllocs: mine.filter((a) => a.DeploymentStatus?.Healthy === true).length,
      UnhealthyAllocs: mine.filter((a) => a.DeploymentStatus?.Healthy === false).length,
    };
    if (
      next.PlacedAllocs !== state.PlacedAllocs ||
      next.HealthyAllocs !== state.HealthyAllocs ||
      next.UnhealthyAllocs !== state.UnhealthyAllocs
    ) {
      Object.assign(state, next);
      changed = true;
    }
  }
  if (changed) tx.upsertDeployment(deployment);
}
