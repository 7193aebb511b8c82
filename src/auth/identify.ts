import type { Identity } from "../commands/context.js";
import type { Directory } from "./directory.js";
import { matrixIdToUsername, type IdentityOptions } from "./identity.js";

/** Matrix sender → directory user. Throws DirectoryUnavailableError when the directory cannot answer. */
export function identifier(directory: Directory, opts: IdentityOptions) {
  return async (sender: string, lookup: { fresh?: boolean } = {}): Promise<Identity> => {
    const username = matrixIdToUsername(sender, opts);
    if (username === null) {
      return { sender, user: null, reason: `${sender} is not a user of ${opts.homeserverDomain}` };
    }
    const user = await directory.lookup(username, lookup);
    return user ? { sender, user } : { sender, user: null, reason: `no directory entry for ${username}` };
  };
}
