/**
 * The backend's side of a WatchHub, for unit tests: a real MvccStore, a
 * durable revision, and the backend's order (writes reach the MVCC store
 * first, then become durable and are published), plus a fake sink.
 */
import { MvccEvent, MvccStore, RANGE_END_ALL } from "../../src/backend/mvcc";
import { WatchChannel, WatchHub, WatchSink, WatchSpec, Watcher } from "../../src/backend/watch-hub";
import { KeyString, keyToString } from "../../src/persist/encoding";
import { Write } from "../../src/persist/records";

export const key = (text: string): KeyString => keyToString(Buffer.from(text, "latin1"));
export const put = (k: string, value: string): Write => ({ key: key(k), value: new Uint8Array(Buffer.from(value)), lease: 0 });
export const del = (k: string): Write => ({ key: key(k), value: null, lease: 0 });

/** What a test compares: the event, with its prev only if it has one. */
export const brief = (e: MvccEvent) => ({
  type: e.type,
  key: e.kv.key,
  mod: e.kv.mod,
  value: Buffer.from(e.kv.value).toString(),
  ...(e.prev ? { prev: { mod: e.prev.mod, value: Buffer.from(e.prev.value).toString() } } : {}),
});

/** The backend's side: the MVCC store, the durable revision, and every event ever published. */
export class Harness {
  readonly mvcc = new MvccStore({ byRevision: true }); // as the backend's
  revision = 0;
  readonly hub = new WatchHub(this);
  /** Every event, in revision order, as the live path produced it. */
  readonly log: MvccEvent[] = [];
  private pending: MvccEvent[] = [];

  /** Applies writes at the next revision, not yet durable. */
  apply(...writes: Write[]): number {
    const rev = this.mvcc.rev + 1;
    const events = this.mvcc.apply(rev, writes);
    this.pending.push(...events);
    this.log.push(...events);
    return rev;
  }

  /** Makes everything applied durable and publishes it, as Backend.onDurable does. */
  flush(): void {
    if (this.mvcc.rev === this.revision) return;
    this.revision = this.mvcc.rev;
    const events = this.pending;
    this.pending = [];
    this.hub.publish(events, this.revision);
  }

  /** Applies writes at the next revision and makes them durable, published on the hub's next turn (as the server does). */
  writeSoon(...writes: Write[]): number {
    const rev = this.apply(...writes);
    this.revision = rev;
    const events = this.pending;
    this.pending = [];
    this.hub.publishSoon(events, rev);
    return rev;
  }

  write(...writes: Write[]): number {
    const rev = this.apply(...writes);
    this.flush();
    return rev;
  }

  watch(spec: Partial<WatchSpec> & { key: string }, sink = new FakeSink()): { w: Watcher; sink: FakeSink } {
    const full: WatchSpec = { rangeEnd: "", startRevision: 0, prevKv: false, noPut: false, noDelete: false, ...spec };
    const w = this.hub.add({ ...full, key: key(full.key), rangeEnd: full.rangeEnd === RANGE_END_ALL ? RANGE_END_ALL : key(full.rangeEnd) }, sink);
    return { w, sink };
  }
}

export class FakeSink implements WatchSink {
  readonly sends: { events: MvccEvent[]; revision: number }[] = [];
  canceled: { reason: string; compactRevision: number } | null = null;
  /** send answers !full: the stream has no room (the channel's `full`, when it has one). */
  full = false;

  /** `channel`: the stream this sink shares with others (a cohort), if any. */
  constructor(readonly channel?: FakeChannel) {}

  send(events: MvccEvent[], revision: number): boolean {
    this.record(events, revision);
    return !(this.channel?.full ?? this.full);
  }

  /** Notes a send (alone or as part of its channel's sendAll). */
  record(events: MvccEvent[], revision: number): void {
    if (this.canceled) throw new Error(`send after cancel: ${JSON.stringify(events.map(brief))}`);
    if (events.length === 0) throw new Error(`an empty send at revision ${revision}`);
    this.sends.push({ events, revision });
  }

  cancel(reason: string, compactRevision: number): void {
    if (this.canceled) throw new Error(`canceled twice: ${reason}`);
    this.canceled = { reason, compactRevision };
  }

  get events(): MvccEvent[] {
    return this.sends.flatMap((s) => s.events);
  }

  get briefs() {
    return this.events.map(brief);
  }
}

/** A stream shared by several FakeSinks: counts its cohort sends, and is full or not for all of them. */
export class FakeChannel implements WatchChannel {
  /** The sinks of each sendAll, in order. */
  readonly calls: (readonly WatchSink[])[] = [];
  full = false;

  sendAll(sinks: readonly WatchSink[], events: MvccEvent[], revision: number): boolean {
    this.calls.push(sinks);
    for (const s of sinks) (s as FakeSink).record(events, revision);
    return !this.full;
  }
}
