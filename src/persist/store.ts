/**
 * The storage contract: an ordered byte-keyed store with atomic, optionally
 * synced batches. It knows nothing of changes or documents; the change log
 * (changelog.ts) gives the bytes their meaning. Implementations: LevelStore
 * (the product) and MemoryStore (unit tests); both pass test/persist/store.contract.
 */
export type StoreOp = { type: "put"; key: Buffer; value: Buffer } | { type: "del"; key: Buffer; value?: undefined };

export interface KeyRange {
  gte: Buffer;
  lt: Buffer;
}

export interface Store {
  open(): Promise<void>;
  close(): Promise<void>;
  get(key: Buffer): Promise<Buffer | undefined>;
  /** Atomic: all ops or none. `sync`: durable (fsynced) when the promise resolves. */
  batch(ops: StoreOp[], sync: boolean): Promise<void>;
  /** Entries in [gte, lt), in byte order. */
  entries(range: KeyRange): AsyncIterable<[Buffer, Buffer]>;
  /** Bytes the store occupies (on disk for Level). */
  sizeBytes(): Promise<number>;
  /** Reclaims space of deleted entries in the range (Level: compactRange). */
  reclaim(range: KeyRange): Promise<void>;
}
