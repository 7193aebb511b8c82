/** The people majordome knows, and their groups, which drive authorization. */
export interface DirectoryUser {
  username: string;
  dn: string;
  displayName?: string;
  /** Group names (cn), sorted, deduplicated. */
  groups: string[];
}

export interface Directory {
  /**
   * fresh=true bypasses the cache (used right before an action executes). null = no such user.
   * Throws DirectoryUnavailableError when the directory can't be reached.
   */
  lookup(username: string, opts?: { fresh?: boolean }): Promise<DirectoryUser | null>;
  /** Members (usernames) of a group, for pinging an on-call group. */
  groupMembers(group: string, opts?: { fresh?: boolean }): Promise<string[]>;
  close(): Promise<void>;
}

/** The directory could not answer: callers must fail closed (no groups means no rights). */
export class DirectoryUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DirectoryUnavailableError";
  }
}

/** Sorted, deduplicated. */
export function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}
