/**
 * Watches: every durable event goes to the watchers whose range it falls in,
 * in revision order, none lost and none twice. A watcher that starts in the
 * past, or whose stream stops taking data, catches up from the MVCC history
 * (in batches of at most WATCH_BATCH_REVISIONS_MAX revisions) before it
 * takes live events again; if that history is compacted away it is canceled
 * with the compact revision, as etcd does.
 *
 * Invariant: a synced watcher has been sent every matching event up to
 * `next - 1`, and `next - 1` is at least the published revision (`revision`)
 * and at most the durable one (or, for a watcher that starts in the future,
 * its start revision - 1, which is above both). Publishes still queued
 * (`publishSoon`) bring every synced watcher the rest, each event once: a
 * watcher already past an event skips it.
 */
import { MvccEvent, MvccStore, inRange } from "./mvcc";

/** etcd replays history in responses of at most 1,000 revisions. */
export const WATCH_BATCH_REVISIONS_MAX = 1_000;
/**
 * Revisions one watcher's catch-up reads in one turn; it goes on in the
 * next, so a watch far behind over revisions with nothing for it does not
 * hold the main thread (writes are answered in between).
 */
export const WATCH_CATCH_UP_REVISIONS_PER_TURN = 32 * WATCH_BATCH_REVISIONS_MAX;

export interface WatchSpec {
  key: string;
  rangeEnd: string;
  /** 0: from the next revision. */
  startRevision: number;
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
}

/** Where a watcher's output goes (the gRPC stream). */
export interface WatchSink {
  /** Sends events up to `revision`; false: the stream is full, stop until `resume`. */
  send(events: MvccEvent[], revision: number): boolean;
  cancel(reason: string, compactRevision: number): void;
  /** The stream, when it can take one call for many of its watchers (see Cohort). */
  readonly channel?: WatchChannel;
}

/** One stream's side of a cohort send. */
export interface WatchChannel {
  /**
   * Sends `events` up to `revision` to each of `sinks` (all of this
   * channel), as each one's `send` would; false: the stream is full.
   */
  sendAll(sinks: readonly WatchSink[], events: MvccEvent[], revision: number): boolean;
}

const withoutPrev = new WeakMap<MvccEvent, MvccEvent>();

export class Watcher {
  /** The next revision this watcher must see. */
  next = 0;
  synced = false;
  /** Its cohort, and its place among the cohort's members. */
  cohort!: Cohort;
  cohortIndex = 0;
  /** Watchers with equal keys see the same events from one publish (so it matches them once). */
  readonly sameEvents: string;
  constructor(readonly spec: WatchSpec, readonly sink: WatchSink) {
    this.sameEvents = `${spec.noPut ? 1 : 0}${spec.noDelete ? 1 : 0}${spec.prevKv ? 1 : 0}${spec.key.length}:${spec.key}${spec.rangeEnd}`;
  }

  matches(e: MvccEvent): boolean {
    if (e.type === "put" ? this.spec.noPut : this.spec.noDelete) return false;
    return inRange(e.kv.key, this.spec.key, this.spec.rangeEnd);
  }

  /** The event as this watcher sees it; one stripped copy per event is shared by every watcher without prev_kv. */
  shape(e: MvccEvent): MvccEvent {
    if (this.spec.prevKv || !e.prev) return e;
    let stripped = withoutPrev.get(e);
    if (!stripped) {
      stripped = { type: e.type, kv: e.kv };
      withoutPrev.set(e, stripped);
    }
    return stripped;
  }
}

/**
 * Watchers on one channel (stream) that see the same events (`sameEvents`).
 * A publish sends to all of them with one `sendAll` while they are in step
 * (every one synced and due every event of the publish), instead of a call
 * per watcher: with 1,000 watchers on 10 streams, publishing a put went
 * from about 225 to 105 µs of the server's main thread (REDESIGN.md,
 * "Watch"). Otherwise, and for a sink without a channel (a cohort of one),
 * each is sent to alone.
 */
export class Cohort {
  readonly members: Watcher[] = [];
  private sinkList: WatchSink[] | null = null;

  constructor(readonly channel: WatchChannel | undefined) {}

  /** The members' sinks: one array while membership holds (a channel may cache on it). */
  get sinks(): readonly WatchSink[] {
    return (this.sinkList ??= this.members.map((w) => w.sink));
  }

  join(w: Watcher): void {
    w.cohort = this;
    w.cohortIndex = this.members.length;
    this.members.push(w);
    this.sinkList = null;
  }

  /** Takes `w` out (its place goes to the last member: order among watchers carries no meaning). */
  leave(w: Watcher): void {
    const last = this.members.pop()!;
    if (last !== w) {
      this.members[w.cohortIndex] = last;
      last.cohortIndex = w.cohortIndex;
    }
    this.sinkList = null;
  }

  /** Every member synced and due every event from revision `first` on. */
  inStep(first: number): boolean {
    for (const w of this.members) if (!w.synced || w.next > first) return false;
    return true;
  }
}

export interface EventSource {
  readonly mvcc: MvccStore;
  /** The newest durable revision. */
  readonly revision: number;
}

export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  /** The newest revision published (see `revision`). */
  private published: number;
  /** Durable events waiting for `publishSoon`'s turn, in revision order. */
  private queued: [MvccEvent[], number][] = [];
  private readonly cohorts = new Set<Cohort>();
  /** Per channel, its cohorts by `sameEvents`. */
  private readonly byChannel = new Map<WatchChannel, Map<string, Cohort>>();
  /** This turn's history scans, by range, filters, prev_kv and revisions (see `history`). */
  private readonly recentHistory = new Map<string, MvccEvent[]>();

  constructor(private readonly source: EventSource) {
    this.published = source.revision;
  }

  /**
   * The newest revision whose events every synced watcher has been sent:
   * what a created or progress response may claim. It trails the durable
   * revision while a `publishSoon` waits for its turn.
   */
  get revision(): number {
    return this.published;
  }

  get size(): number {
    return this.watchers.size;
  }

  /**
   * Starts a watcher: from the next revision to publish (start 0), which the
   * live path brings, publishes still queued included; or from its start
   * revision, caught up from history first if that is in the past.
   */
  add(spec: WatchSpec, sink: WatchSink): Watcher {
    const w = new Watcher(spec, sink);
    this.watchers.add(w);
    this.cohortFor(w).join(w);
    if (spec.startRevision > 0) {
      w.next = spec.startRevision;
      this.catchUp(w);
    } else {
      w.next = this.published + 1;
      w.synced = true;
    }
    return w;
  }

  remove(w: Watcher): void {
    if (!this.watchers.delete(w)) return;
    const c = w.cohort;
    c.leave(w);
    if (c.members.length > 0) return;
    this.cohorts.delete(c);
    if (!c.channel) return;
    const mine = this.byChannel.get(c.channel)!;
    mine.delete(w.sameEvents);
    if (mine.size === 0) this.byChannel.delete(c.channel);
  }

  private cohortFor(w: Watcher): Cohort {
    const channel = w.sink.channel;
    let mine = channel && this.byChannel.get(channel);
    let c = mine?.get(w.sameEvents);
    if (!c) {
      c = new Cohort(channel);
      this.cohorts.add(c);
      if (channel) {
        if (!mine) this.byChannel.set(channel, (mine = new Map()));
        mine.set(w.sameEvents, c);
      }
    }
    return c;
  }

  /** Called when a full stream drains: unsynced watchers catch up from history. */
  resume(w: Watcher): void {
    if (this.watchers.has(w) && !w.synced) this.catchUp(w);
  }

  /**
   * Publishes durable events on the event loop's check phase, after what the
   * current turn answers has gone out: a put's answer does not wait for its
   * fan-out (1,000 watchers: about 250 µs of publishing and framing).
   * In order, each publish as `publish` would.
   */
  publishSoon(events: MvccEvent[], rev: number): void {
    this.queued.push([events, rev]);
    if (this.queued.length === 1) setImmediate(() => this.publishQueued());
  }

  private publishQueued(): void {
    const queued = this.queued;
    this.queued = [];
    for (const [events, rev] of queued) this.publish(events, rev);
  }

  /**
   * Durable events up to `rev`, from the backend. Watchers with the same
   * range, filters and prev_kv share one matched list (1,000 watchers of one
   * prefix match each event once), unless they start after some of these
   * events; a cohort in step gets it in one call.
   */
  publish(events: MvccEvent[], rev: number): void {
    if (rev > this.published) this.published = rev;
    if (events.length === 0) {
      for (const w of this.watchers) if (w.synced && w.next <= rev) w.next = rev + 1;
      return;
    }
    let first = Infinity;
    for (const e of events) if (e.kv.mod < first) first = e.kv.mod;
    const matched = new Map<string, MvccEvent[]>();
    const shared = (w: Watcher): MvccEvent[] => {
      let list = matched.get(w.sameEvents);
      if (!list) matched.set(w.sameEvents, (list = this.match(w, events)));
      return list;
    };
    for (const c of this.cohorts) {
      const members = c.members;
      if (c.channel && members.length > 1 && c.inStep(first)) {
        const mine = shared(members[0]);
        for (const w of members) w.next = rev + 1; // each was due `first`, so none starts after `rev`
        if (mine.length > 0 && !c.channel.sendAll(c.sinks, mine, rev)) for (const w of members) w.synced = false;
        continue;
      }
      for (const w of members) {
        if (!w.synced) continue;
        const mine = w.next <= first ? shared(w) : this.match(w, events);
        w.next = Math.max(w.next, rev + 1); // a watcher that starts in the future keeps its start
        if (mine.length > 0 && !w.sink.send(mine, rev)) w.synced = false; // sent, but the stream is full
      }
    }
  }

  /** The events `w` is due, as it sees them (sinks only read the list). */
  private match(w: Watcher, events: MvccEvent[]): MvccEvent[] {
    const mine: MvccEvent[] = [];
    for (const e of events) if (e.kv.mod >= w.next && w.matches(e)) mine.push(w.shape(e));
    return mine;
  }

  /**
   * Sends history [next, durable] in batches; stops early if the stream
   * fills (it resumes when the stream drains), and after
   * WATCH_CATCH_UP_REVISIONS_PER_TURN revisions (it resumes next turn).
   */
  private catchUp(w: Watcher): void {
    const mvcc = this.source.mvcc;
    const durable = this.source.revision;
    if (w.next <= durable && w.next < mvcc.compactRev) {
      this.remove(w);
      w.sink.cancel("", mvcc.compactRev); // etcd 3.4 says why by compact_revision alone (no cancel_reason): found by the differential test
      return;
    }
    const stopAt = w.next + WATCH_CATCH_UP_REVISIONS_PER_TURN;
    while (w.next <= durable) {
      if (w.next >= stopAt) {
        w.synced = false;
        setImmediate(() => this.resume(w));
        return;
      }
      const to = Math.min(durable, w.next + WATCH_BATCH_REVISIONS_MAX - 1);
      const events = this.history(w, to);
      w.next = to + 1;
      if (events.length > 0 && !w.sink.send(events, to)) {
        w.synced = false;
        return;
      }
    }
    w.synced = true;
  }

  /**
   * History (`w.next`, `to`] as `w` sees it. Watchers alike that catch up
   * over the same revisions in one turn (clients reconnecting after a
   * restart, all from one revision) share one scan, and so one encoding of
   * each event; the cache lives for the turn.
   */
  private history(w: Watcher, to: number): MvccEvent[] {
    const key = `${w.next}:${to}:${w.sameEvents}`;
    let events = this.recentHistory.get(key);
    if (!events) {
      events = this.source.mvcc.eventsBetween(w.spec.key, w.spec.rangeEnd, w.next, to).filter((e) => w.matches(e)).map((e) => w.shape(e));
      if (this.recentHistory.size === 0) setImmediate(() => this.recentHistory.clear());
      this.recentHistory.set(key, events);
    }
    return events;
  }
}
