import type { Identity } from "./context.js";

export type Decision =
  | { outcome: "allow" }
  | { outcome: "deny"; reason: string }
  /** Allowed once enough people approve (the approvals issue fills in how). */
  | { outcome: "approval"; rule: unknown };

/** Decides whether `identity` may run what `policyKeys` name, in `roomId`. */
export interface Authorizer {
  decide(identity: Identity, policyKeys: string[], roomId: string): Promise<Decision>;
}

/** Until policies are loaded: anyone the directory knows may run anything (only read-only commands exist). */
export const interimAuthorizer: Authorizer = {
  async decide(identity) {
    return identity.user
      ? { outcome: "allow" }
      : {
          outcome: "deny",
          reason: `${identity.reason ?? "unknown user"}: only directory users may use majordome.`,
        };
  },
};
