import type { IFilterInfo, IStorageProvider } from "matrix-bot-sdk";
import type { StateStore } from "../../state/store.js";

const TOKEN = "matrix/sync-token";
const FILTER = "matrix/filter";

/** matrix-bot-sdk's storage, kept in majordome's state store; reports each stored sync position. */
export class StateStorageProvider implements IStorageProvider {
  private token: string | null = null;
  private filter: IFilterInfo | null = null;
  private readonly values = new Map<string, string>();

  constructor(
    private readonly store: StateStore,
    private readonly onSyncStored: (token: string | null) => void,
  ) {}

  async load(): Promise<void> {
    this.token = (await this.store.get<string | null>(TOKEN))?.value ?? null;
    this.filter = (await this.store.get<IFilterInfo>(FILTER))?.value ?? null;
    for (const { key, value } of await this.store.list<string>("matrix/kv/")) {
      this.values.set(decodeURIComponent(key.slice("matrix/kv/".length)), value);
    }
  }

  async setSyncToken(token: string | null): Promise<void> {
    this.token = token;
    await this.store.set(TOKEN, token);
    this.onSyncStored(token);
  }

  getSyncToken(): string | null {
    return this.token;
  }

  async setFilter(filter: IFilterInfo): Promise<void> {
    this.filter = filter;
    await this.store.set(FILTER, filter);
  }

  getFilter(): IFilterInfo {
    return this.filter as IFilterInfo;
  }

  async storeValue(key: string, value: string): Promise<void> {
    this.values.set(key, value);
    await this.store.set(`matrix/kv/${encodeURIComponent(key)}`, value);
  }

  readValue(key: string): string | undefined {
    return this.values.get(key);
  }
}
