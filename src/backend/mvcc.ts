/**
 * The multi-version view of the keyspace that etcd's API needs: per key its
 * create_revision, mod_revision and version, and history back to the compact
 * revision. It is derived state: the backend and every frontend apply the same
 * (revision, writes) sequence and so hold identical stores.
 *
 * Invariants:
 *  1. A key's history is sorted by (mod revision, sub), strictly increasing:
 *     `sub` is the write's place in its revision's writes (etcd's
 *     sub-revision), so a revision that writes a key twice (a Txn putting
 *     it in one nested Txn and deleting it in a later one) keeps both.
 *  2. A tombstone (value null) is the first entry of a history only at the
 *     compact revision (kept so that a watch from there sees the delete).
 *  3. No entry of a revision older than the newest revision at or below
 *     compactRev survives a compaction (all of that revision's entries do,
 *     so a watch from there sees each of its events).
 *  4. rev never goes down.
 */
import BTree from "sorted-btree";
import { MergekvError, assert } from "../errors";
import { KeyString } from "../persist/encoding";
import { Write } from "../persist/records";
import { RevisionIndex } from "./revision-index";
import {
  Entry, Found, created, decodeHistory, deletedAt, encodeHistory, entryAt, eventOf, inWriteOrder, lastIndexAtOrBelow, liveBefore, toKeyValue,
} from "./history";

export interface KeyValue {
  key: KeyString;
  create: number;
  mod: number;
  version: number;
  value: Uint8Array;
  lease: number;
}

export interface MvccEvent {
  type: "put" | "delete";
  /** For a delete: key and mod (the deletion's revision) only, as etcd. */
  kv: KeyValue;
  prev?: KeyValue;
}

/** Keys whose history one turn trims after a compaction (10,000: about 5 ms here; 1M keys at once took 0.5 s). */
export const COMPACTION_TRIM_KEYS_PER_TURN = 10_000;

/** etcd's range_end conventions: "" = the key alone; "\0" = every key >= key. */
export const RANGE_END_ALL = "\u0000";

/** Whether key `k` is in [key, rangeEnd), with etcd's range_end conventions (RANGE_END_ALL). */
export function inRange(k: string, key: string, rangeEnd: string): boolean {
  if (rangeEnd === "") return k === key;
  if (rangeEnd === RANGE_END_ALL) return k >= key;
  return k >= key && k < rangeEnd;
}

export interface MvccOptions {
  /** Remember which keys changed, for incremental snapshots. */
  trackDirty?: boolean;
  /** Index history by revision (the backend's store, which watches catch up from: RevisionIndex). */
  byRevision?: boolean;
}

export class MvccStore {
  private readonly index = new BTree<string, Entry[]>();
  private readonly dirty: Set<string> | null;
  private readonly byRevision: RevisionIndex | null;
  /** Where trimming to the compact revision goes on (null: done; see `trim`). */
  private trimFrom: string | null = null;
  private trimScheduled = false;
  /** Waiting for the trimming to finish (`trimmed`). */
  private trimWaiters: (() => void)[] = [];
  rev = 0;
  compactRev = 0;

  constructor(opts: MvccOptions = {}) {
    this.dirty = opts.trackDirty ? new Set() : null;
    this.byRevision = opts.byRevision ? new RevisionIndex() : null;
  }

  get size(): number {
    return this.index.size;
  }

  /**
   * Records `writes` at revision `rev` (> the current one), in order: a key
   * may come twice (put, then deleted by a later op of the same Txn), and
   * each write is an event. Deleting an absent key is no event. A put's or
   * delete's prev is the key's value before the revision, as etcd's watch
   * reads it (at mod - 1), except that a put creating its key has none
   * (etcd reads none for a create: a key deleted and put again by one Txn). `replay`: recovery over a snapshot that may
   * already hold some of these writes; a write at or below the key's newest
   * (revision, sub) is skipped.
   */
  apply(rev: number, writes: readonly Write[], replay = false): MvccEvent[] {
    if (!replay) assert(rev > this.rev, `revision ${rev} after ${this.rev}`);
    if (rev > this.rev) this.rev = rev;
    const events: MvccEvent[] = [];
    for (let sub = 0; sub < writes.length; sub++) {
      const w = writes[sub];
      const history = this.index.get(w.key);
      const last = history?.[history.length - 1];
      if (replay && last && (last.mod > rev || (last.mod === rev && last.sub >= sub))) continue;
      const live = last && last.value !== null ? last : undefined;
      const again = last !== undefined && last.mod === rev; // this revision wrote the key before
      if (w.value === null && !live) continue;
      const before = again ? liveBefore(history!, rev) : live;
      let entry: Entry;
      if (w.value === null) {
        entry = { mod: rev, sub, create: 0, version: 0, value: null, lease: 0 };
        events.push({ type: "delete", kv: deletedAt(w.key, rev), prev: before && toKeyValue(w.key, before) });
      } else {
        entry = { mod: rev, sub, create: live ? live.create : rev, version: live ? live.version + 1 : 1, value: w.value, lease: w.lease };
        events.push({ type: "put", kv: toKeyValue(w.key, entry), prev: before && !created(entry) ? toKeyValue(w.key, before) : undefined });
      }
      if (history) history.push(entry);
      else this.index.set(w.key, [entry]);
      if (!again) this.byRevision?.add(rev, w.key);
      this.dirty?.add(w.key);
    }
    return events;
  }

  /** The key's value at `rev` (0 = current), or undefined if absent then. */
  get(key: string, rev = 0): KeyValue | undefined {
    const history = this.index.get(key);
    if (!history) return undefined;
    const e = entryAt(history, rev || this.rev);
    return e && e.value !== null ? toKeyValue(key as KeyString, e) : undefined;
  }

  /** Throws etcd's errors for a revision outside [compactRev, rev]; 0 or negative = current (as etcd). */
  checkReadable(rev: number): number {
    if (rev <= 0) return this.rev;
    if (rev > this.rev) throw new MergekvError("FutureRevision");
    if (rev < this.compactRev) throw new MergekvError("Compacted");
    return rev;
  }

  /** Live key-values in [key, rangeEnd) at `rev`, in byte order. See RANGE_END_ALL. */
  *range(key: string, rangeEnd: string, rev = 0): Generator<KeyValue> {
    const at = rev || this.rev;
    if (rangeEnd === "") {
      const kv = this.get(key, at);
      if (kv) yield kv;
      return;
    }
    const open = rangeEnd === RANGE_END_ALL;
    if (!open && rangeEnd <= key) return;
    for (const [k, history] of this.index.entries(key)) {
      if (!open && k >= rangeEnd) return;
      const e = entryAt(history, at);
      if (e && e.value !== null) yield toKeyValue(k as KeyString, e);
    }
  }

  /** Keys (live now) in the range: what a DeleteRange would delete. */
  liveKeys(key: string, rangeEnd: string): KeyString[] {
    return [...this.range(key, rangeEnd)].map((kv) => kv.key);
  }

  /** Drops history older than `rev` (etcd Compact), all at once. Returns how many keys were touched. */
  compact(rev: number): number {
    this.setCompactRev(rev);
    return this.trim(Infinity).touched;
  }

  /**
   * etcd Compact without the wait: from now on reads below `rev` fail and
   * watches cannot start there (the revision index drops those revisions);
   * the histories are trimmed by `trim`, or `trimSoon` a slice per turn.
   * Reads at `rev` and above are the same before and after the trimming.
   */
  setCompactRev(rev: number): void {
    if (rev <= this.compactRev) throw new MergekvError("Compacted");
    if (rev > this.rev) throw new MergekvError("FutureRevision");
    this.compactRev = rev;
    this.byRevision?.dropBelow(rev);
    this.trimFrom = ""; // every key, from the first
  }

  /**
   * Trims the histories of up to `keysMax` keys to the compact revision
   * (invariants 2 and 3), from the key the last call stopped at. `done`:
   * every key has been, since the last setCompactRev.
   */
  trim(keysMax: number): { touched: number; done: boolean } {
    if (this.trimFrom === null) return { touched: 0, done: true };
    const rev = this.compactRev;
    const emptied: string[] = [];
    let touched = 0, seen = 0;
    let stoppedAt: string | null = null;
    for (const [key, history] of this.index.entries(this.trimFrom)) {
      if (seen++ === keysMax) {
        stoppedAt = key;
        break;
      }
      const last = lastIndexAtOrBelow(history, rev);
      if (last < 0) continue;
      let first = last; // the first entry of that revision
      while (first > 0 && history[first - 1].mod === history[last].mod) first--;
      const deleted = history[last].value === null && history[last].mod < rev; // gone before the compact revision
      const start = deleted ? last + 1 : first;
      if (start === 0) continue;
      history.splice(0, start);
      touched++;
      this.dirty?.add(key);
      if (history.length === 0) emptied.push(key);
    }
    for (const k of emptied) this.index.delete(k);
    this.trimFrom = stoppedAt;
    if (stoppedAt === null && this.trimWaiters.length > 0) for (const w of this.trimWaiters.splice(0)) w();
    return { touched, done: stoppedAt === null };
  }

  /** Resolves once every history is trimmed to the compact revision (at once if it is). */
  trimmed(): Promise<void> {
    if (this.trimFrom === null) return Promise.resolve();
    return new Promise((resolve) => this.trimWaiters.push(resolve));
  }

  /**
   * Trims COMPACTION_TRIM_KEYS_PER_TURN keys per event-loop turn until done:
   * trimming 1M keys' histories in one go held the thread for about 0.5 s.
   */
  trimSoon(): void {
    if (this.trimScheduled) return;
    this.trimScheduled = true;
    const step = () => {
      if (this.trim(COMPACTION_TRIM_KEYS_PER_TURN).done) this.trimScheduled = false;
      else setImmediate(step);
    };
    setImmediate(step);
  }

  /**
   * Every event in [fromRev, toRev] on keys in [key, rangeEnd), in revision
   * order, each revision's in the order its request made them (sub; key
   * order among writes recovered without one): a watch's history. An
   * event's prev is the key's value before that revision, if still live and
   * not compacted away. A range is read by revision where the store indexes
   * them (the cost is the revisions, not the keys in the range); a single
   * key from its history.
   */
  eventsBetween(key: string, rangeEnd: string, fromRev: number, toRev: number): MvccEvent[] {
    if (rangeEnd !== "" && this.byRevision && fromRev >= this.byRevision.first) return this.eventsByRevision(key, rangeEnd, fromRev, toRev);
    const found: Found[] = [];
    const visit = (k: string, history: Entry[]) => {
      for (let i = Math.max(0, lastIndexAtOrBelow(history, fromRev - 1) + 1); i < history.length && history[i].mod <= toRev; i++) found.push({ key: k as KeyString, history, i });
    };
    if (rangeEnd === "") {
      const h = this.index.get(key);
      if (h) visit(key, h);
    } else {
      const open = rangeEnd === RANGE_END_ALL;
      for (const [k, history] of this.index.entries(key)) {
        if (!open && k >= rangeEnd) break;
        visit(k, history);
      }
    }
    return found.sort(inWriteOrder).map((f) => eventOf(f.key, f.history, f.i, this.compactRev));
  }

  /** eventsBetween through the revision index: each revision's keys that fall in the range, their entries in write order. */
  private eventsByRevision(key: string, rangeEnd: string, fromRev: number, toRev: number): MvccEvent[] {
    const byRevision = this.byRevision!;
    const events: MvccEvent[] = [];
    const found: Found[] = [];
    const visit = (k: string, rev: number) => {
      if (!inRange(k, key, rangeEnd)) return;
      const history = this.index.get(k)!;
      let i = lastIndexAtOrBelow(history, rev);
      assert(i >= 0 && history[i].mod === rev, `the revision index holds ${JSON.stringify(k)} at ${rev}, its history does not`);
      while (i > 0 && history[i - 1].mod === rev) i--;
      for (; i < history.length && history[i].mod === rev; i++) found.push({ key: k as KeyString, history, i });
    };
    for (let rev = fromRev; rev <= toRev; rev++) {
      const keys = byRevision.at(rev);
      if (keys === undefined) continue;
      if (typeof keys === "string") visit(keys, rev);
      else for (const k of keys) visit(k, rev);
      if (found.length > 1) found.sort(inWriteOrder);
      for (const f of found) events.push(eventOf(f.key, f.history, f.i, this.compactRev));
      found.length = 0;
    }
    return events;
  }

  /** Keys changed since the last call (for snapshots); empties the set. */
  takeDirty(): string[] {
    assert(this.dirty, "dirty tracking enabled");
    const keys = [...this.dirty];
    this.dirty.clear();
    return keys;
  }

  /** A key's whole history, encoded (undefined if the key has none left). */
  encodeHistory(key: string): Buffer | undefined {
    const history = this.index.get(key);
    return history && encodeHistory(history);
  }

  /** Restores a key's history from `encodeHistory`'s bytes (recovery and replica bootstrap). */
  loadHistory(key: KeyString, bytes: Uint8Array, what: string): void {
    const history = decodeHistory(key, bytes, what);
    this.index.set(key, history);
    if (this.byRevision) for (let i = 0; i < history.length; i++) if (i === 0 || history[i].mod !== history[i - 1].mod) this.byRevision.add(history[i].mod, key);
    const top = history[history.length - 1].mod;
    if (top > this.rev) this.rev = top;
  }

  /**
   * Recovery, before histories are loaded: revisions below `compactRev` (the
   * recovered compact revision) are not indexed, so the revision index never
   * spans more than the history a watch may read.
   */
  indexFrom(compactRev: number): void {
    this.byRevision?.startAt(compactRev);
  }

  /** Every key with history, in byte order. */
  keys(): IterableIterator<string> {
    return this.index.keys();
  }

  /** Newest mod revision of a key (live or deleted), 0 if none: used to make replay idempotent. */
  lastMod(key: string): number {
    const h = this.index.get(key);
    return h ? h[h.length - 1].mod : 0;
  }
}
