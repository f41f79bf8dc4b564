/**
 * A key's MVCC history: its entries, one per write, sorted by (mod revision,
 * sub), how they read at a revision, the watch events they make, and their
 * encoding in a snapshot (MvccStore keeps one per key).
 */
import { MergekvError } from "../errors";
import { KeyString } from "../persist/encoding";
import { RecordWriter, RecordReader } from "../persist/records";
import type { KeyValue, MvccEvent } from "./mvcc";

export interface Entry {
  mod: number;
  /** The write's place among its revision's writes: orders one revision's events as the request made them. */
  sub: number;
  create: number;
  version: number;
  /** null: deleted at `mod`. */
  value: Uint8Array | null;
  lease: number;
}

const EMPTY = new Uint8Array(0);
/** Follows a history's entries when any has a sub: each entry's, in order. */
const HISTORY_SUBS = 1;

/** One history entry, found for an event. */
export interface Found {
  key: KeyString;
  history: Entry[];
  i: number;
}

/** Revision, then sub, then key (writes recovered from a history written before subs were kept have sub 0). */
export function inWriteOrder(a: Found, b: Found): number {
  const x = a.history[a.i], y = b.history[b.i];
  return x.mod - y.mod || x.sub - y.sub || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/**
 * The event of `history[i]` of `key`, with the key's value before that
 * revision as prev if it was live and is not compacted away (an earlier
 * write of the same revision is not: etcd reads prev at mod - 1); an event
 * at the compact revision or a put creating its key has none, whether or
 * not its history has been trimmed yet.
 */
export function eventOf(key: KeyString, history: Entry[], i: number, compactRev: number): MvccEvent {
  const e = history[i];
  const before = e.mod > compactRev && !created(e) ? liveBefore(history, e.mod) : undefined;
  const prev = before ? toKeyValue(key, before) : undefined;
  return e.value === null ? { type: "delete", kv: deletedAt(key, e.mod), prev } : { type: "put", kv: toKeyValue(key, e), prev };
}

/** A delete event's kv: key and mod only, as etcd. */
export function deletedAt(key: KeyString, rev: number): KeyValue {
  return { key, create: 0, mod: rev, version: 0, value: EMPTY, lease: 0 };
}

export function toKeyValue(key: KeyString, e: Entry): KeyValue {
  return { key, create: e.create, mod: e.mod, version: e.version, value: e.value ?? EMPTY, lease: e.lease };
}

export function lastIndexAtOrBelow(history: Entry[], rev: number): number {
  let lo = 0, hi = history.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (history[mid].mod <= rev) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

/** Whether a put's entry made its key (etcd's create event: it carries no prev). */
export function created(e: Entry): boolean {
  return e.value !== null && e.create === e.mod;
}

/** The key's live entry before revision `rev` (what etcd's watch reads as prev, at rev - 1). */
export function liveBefore(history: Entry[], rev: number): Entry | undefined {
  const i = lastIndexAtOrBelow(history, rev - 1);
  return i >= 0 && history[i].value !== null ? history[i] : undefined;
}

export function entryAt(history: Entry[], rev: number): Entry | undefined {
  const i = lastIndexAtOrBelow(history, rev);
  return i >= 0 ? history[i] : undefined;
}

/**
 * A history's bytes: the entries, then, only when some entry's sub is not
 * 0, a tag and every entry's sub (most histories have none: their bytes are
 * as before subs were kept).
 */
export function encodeHistory(history: readonly Entry[]): Buffer {
  const w = new RecordWriter();
  w.u32(history.length);
  for (const e of history) {
    w.u64(e.mod); w.u64(e.create); w.u64(e.version); w.u64(e.lease);
    w.u8(e.value === null ? 1 : 0);
    w.bytes(e.value ?? EMPTY);
  }
  if (history.some((e) => e.sub !== 0)) {
    w.u8(HISTORY_SUBS);
    for (const e of history) w.u32(e.sub);
  }
  return w.finish();
}

/** `encodeHistory`'s bytes back as entries; a truncated, empty or out-of-order history is Corrupt (`what` names it). */
export function decodeHistory(key: KeyString, bytes: Uint8Array, what: string): Entry[] {
  const r = new RecordReader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), what);
  const history: Entry[] = [];
  for (let n = r.u32(); n > 0; n--) {
    const mod = r.u64(), create = r.u64(), version = r.u64(), lease = r.u64();
    const deleted = r.u8() === 1;
    const value = r.bytes();
    history.push({ mod, sub: 0, create, version, lease, value: deleted ? null : value });
  }
  if (!r.atEnd()) {
    if (r.u8() !== HISTORY_SUBS) throw new MergekvError("Corrupt", `${what}: unknown trailer`);
    for (const e of history) e.sub = r.u32();
  }
  r.end();
  if (history.length === 0) throw new MergekvError("Corrupt", `${what}: empty history`);
  for (let i = 1; i < history.length; i++) {
    if (inWriteOrder({ key, history, i: i - 1 }, { key, history, i }) >= 0) throw new MergekvError("Corrupt", `${what}: history out of order`);
  }
  return history;
}
