import type { ApprovalRule, KeyVerdict, Policies, PolicyRule } from "../auth/policy.js";
import type { Identity } from "./context.js";

export type Decision =
  | { outcome: "allow"; verdicts: KeyVerdict[] }
  | { outcome: "deny"; reason: string; verdicts: KeyVerdict[] }
  /** Allowed once enough people approve: the strictest approval among the keys. */
  | { outcome: "approval"; approval: ApprovalRule; rule: PolicyRule; verdicts: KeyVerdict[] };

/** Decides whether `identity` may run what `policyKeys` name, in `roomId`. */
export interface Authorizer {
  decide(identity: Identity, policyKeys: string[], roomId: string): Decision;
}

/** Every key must be allowed; the key needing the most approvers sets the approval. Default: deny. */
export class PolicyAuthorizer implements Authorizer {
  constructor(readonly policies: Policies) {}

  decide(identity: Identity, policyKeys: string[], roomId: string): Decision {
    const groups = identity.user ? identity.user.groups : null;
    const verdicts = policyKeys.map((key) => this.policies.verdict(key, groups, roomId));
    const denied = verdicts.find((v) => v.kind === "denied");
    if (denied) {
      const who = identity.user ? "" : `${identity.reason ?? "unknown user"}: `;
      return { outcome: "deny", reason: `${who}${denied.reason}.`, verdicts };
    }
    let strictest: Extract<KeyVerdict, { kind: "approval" }> | undefined;
    for (const v of verdicts) {
      if (v.kind === "approval" && (!strictest || v.approval.approvers > strictest.approval.approvers))
        strictest = v;
    }
    return strictest
      ? { outcome: "approval", approval: strictest.approval, rule: strictest.rule, verdicts }
      : { outcome: "allow", verdicts };
  }
}
