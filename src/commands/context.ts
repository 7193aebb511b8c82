import type { Clock } from "../clock.js";
import type { Message } from "../chat/message.js";
import type { Outbox } from "../chat/outbox.js";
import type { DirectoryUser } from "../auth/directory.js";
import type { ActionJournal } from "../state/journal.js";
import type { StateStore } from "../state/store.js";
import type { CommandSpec } from "./declare.js";
import type { Router } from "./router.js";
import type { Authorizer } from "./authorize.js";
import type { Policies } from "../auth/policy.js";
import type { NomadServices } from "../backends/nomad/index.js";
import type { ProvisioningServices } from "../backends/provisioning.js";
import type { StolonServices } from "../backends/stolon/index.js";
import type { AlertEngine } from "../alerts/engine.js";

/** What every handler may use; later capabilities add their backends here. */
export interface Services {
  clock: Clock;
  store: StateStore;
  journal: ActionJournal;
  outbox: Outbox;
  router: Router;
  authorizer: Authorizer;
  policies: Policies;
  /** Present when the config has a nomad section. */
  nomad?: NomadServices;
  provisioning?: ProvisioningServices;
  /** Present when the config has a stolon section. */
  stolon?: StolonServices;
  /** Present when alerts are configured. */
  alerts?: AlertEngine;
  /** Reads a person's groups from the directory (fresh: bypass the cache). */
  identify(sender: string, opts?: { fresh?: boolean }): Promise<Identity>;
}

export interface Identity {
  sender: string;
  /** Null when the sender is not from the served homeserver domain or not in the directory. */
  user: DirectoryUser | null;
  /** Why `user` is null, in words for the room. */
  reason?: string;
}

export interface CommandContext {
  readonly command: CommandSpec;
  readonly identity: Identity;
  readonly roomId: string;
  /** The event that carried the command. */
  readonly eventId: string;
  /** The homeserver's timestamp of the command and when majordome picked it up. */
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly prefix: string;
  readonly services: Services;
  /** Replies to the command. Replies are numbered, so a command replayed after a crash does not post twice. */
  reply(msg: Message): Promise<string>;
  edit(messageId: string, msg: Message): Promise<void>;
  thread(rootMessageId: string, msg: Message): Promise<string>;
  /** Work that outlives the command (a deployment, a drain): it reports its own outcome. */
  background(label: string, task: () => Promise<void>): void;
}
