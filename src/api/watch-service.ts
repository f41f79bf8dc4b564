/**
 * etcd's Watch service: one bidi stream carries many watches. The stream
 * handler only translates; the WatchHub (backend) decides what is sent.
 */
import { setMaxListeners } from "node:events";
import { Engine } from "../server";
import { WatchChannel, WatchHub, WatchSink, Watcher } from "../backend/watch-hub";
import { MvccEvent } from "../backend/mvcc";
import { fromKv, int, key as wireKey, Wire } from "./convert";
import { streamCaller, header, statusText, toStatus, HeaderSource, messageBytesMax } from "./rpc";
import { ServerCall } from "./grpc-call";
import { ServiceImplementation } from "./grpc-server";
import { ResponseBatch } from "./response-batch";
import { MergekvError } from "../errors";

/** etcd's default --experimental-watch-progress-notify-interval. */
export const PROGRESS_NOTIFY_INTERVAL_MS = 10 * 60 * 1000;
/** Watches one stream may hold: bounds what one client can make the server track. */
export const WATCHES_PER_STREAM_MAX = 10_000;
/**
 * Event bytes one stream may have queued for its client before its watchers
 * stop taking live events (they catch up from history once it is half
 * drained). Per stream, not per message: one put can make a response for
 * each of hundreds of watchers on one stream.
 */
export const WATCH_STREAM_BUFFER_BYTES = 64 << 10;


/** Encodes a WatchResponse (the service's own serializer). */
export type WatchEncoder = (m: Wire) => Buffer;

/**
 * Each event encoded once, however many watchers it goes to (events are never
 * mutated): the bytes of a WatchResponse holding just that event, i.e. one
 * element of its repeated `events` field. Protobuf messages concatenate (in
 * any field order), so a watcher's response is its watch id, encoded, then
 * a body: the revision's header and these bytes for each of its events.
 */
const encodedEvents = new WeakMap<MvccEvent, Buffer>();

function encodedEvent(e: MvccEvent, encode: WatchEncoder): Buffer {
  let out = encodedEvents.get(e);
  if (!out) {
    const wire: Wire = { type: e.type === "put" ? "Put" : "Delete", kv: fromKv(e.kv) };
    if (e.prev) wire.prev_kv = fromKv(e.prev);
    out = encode({ events: [wire] });
    encodedEvents.set(e, out);
  }
  return out;
}

/**
 * The body of the responses that carry `events` at `revision`, joined once
 * for every watcher the hub hands that same list: it shares one list among
 * watchers with equal ranges, filters and prev_kv, per publish (1,000
 * watchers of one prefix, one list), and per turn when they catch up over
 * the same revisions. Joined per watcher, the parts cost 0.2 µs each time in
 * the fan-out's profile.
 */
const bodies = new WeakMap<readonly MvccEvent[], { events: readonly MvccEvent[]; revision: number; bytes: Buffer }>();

/** The body last joined: consecutive watchers nearly always share it (a WeakMap lookup each was 5% of the fan-out). */
let lastBody: { events: readonly MvccEvent[]; revision: number; bytes: Buffer } | undefined;

function responseBody(events: readonly MvccEvent[], revision: number, heads: ResponseHeads, encode: WatchEncoder): Buffer {
  if (lastBody && lastBody.events === events && lastBody.revision === revision) return lastBody.bytes;
  const cached = bodies.get(events);
  if (cached && cached.revision === revision) {
    lastBody = cached;
    return cached.bytes;
  }
  const parts = [heads.header(revision)];
  for (const e of events) parts.push(encodedEvent(e, encode));
  lastBody = { events, revision, bytes: Buffer.concat(parts) };
  bodies.set(events, lastBody);
  return lastBody.bytes;
}

/** WatchResponse field 7 (fragment), true: on every response of a split one but the last. */
const FRAGMENT_FIELD = Buffer.from([(7 << 3) | 0, 1]);

/**
 * The bodies of the responses that carry `events` at `revision` to a watch
 * created with `fragment`, split as etcd 3.4 splits them (sendFragments):
 * one body when the response weighs less than `limit` (etcd: the server's
 * --max-request-bytes plus gRPC's 512 KiB) or holds one event; else as many
 * events to a response as keep it under `limit`, at least one, each response
 * but the last marked fragment. Clients that asked join them again.
 */
function fragmentBodies(idBytes: Buffer, events: readonly MvccEvent[], revision: number, heads: ResponseHeads, encode: WatchEncoder, limit: number): Buffer[] {
  const whole = responseBody(events, revision, heads, encode);
  if (idBytes.length + whole.length < limit || events.length < 2) return [whole];
  const header = heads.header(revision);
  const parts = events.map((e) => encodedEvent(e, encode));
  const bodies: Buffer[] = [];
  for (let i = 0; i < parts.length; ) {
    const first = i;
    let size = idBytes.length + header.length + FRAGMENT_FIELD.length;
    for (; i < parts.length; i++) {
      size += parts[i].length;
      if (i > first && size >= limit) break; // the event that reaches the limit starts the next response
    }
    bodies.push(Buffer.concat([header, ...(i < parts.length ? [FRAGMENT_FIELD] : []), ...parts.slice(first, i)]));
  }
  return bodies;
}

/**
 * The parts of a WatchResponse other than its events: the header (field 1,
 * the same for every watcher sent the same revision, so encoded once per
 * revision) and a watcher's watch_id (field 2, a varint written here). Ids
 * outside what a short varint holds, and -1, go through the encoder.
 */
class ResponseHeads {
  private revision = -1;
  private headerBytes: Buffer = Buffer.alloc(0);

  constructor(private readonly headers: HeaderSource, private readonly encode: WatchEncoder) {}

  header(revision: number): Buffer {
    if (revision !== this.revision) {
      this.headerBytes = this.encode({ header: header(this.headers, revision) });
      this.revision = revision;
    }
    return this.headerBytes;
  }

  watchId(id: number): Buffer {
    if (id === 0) return EMPTY; // proto3 leaves a zero out
    if (id < 0 || id > 0xfffffff) return this.encode({ watch_id: id });
    const out = Buffer.allocUnsafe(5);
    out[0] = WATCH_ID_TAG;
    let n = 1;
    let v = id;
    while (v >= 0x80) {
      out[n++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[n++] = v;
    return out.subarray(0, n);
  }
}

/** A sink of this service: it knows its watcher's encoded id, and whether it was created with `fragment`. */
interface StreamSink extends WatchSink {
  readonly idBytes: Buffer;
  readonly fragment: boolean;
}

const headRunsOf = new WeakMap<readonly WatchSink[], Buffer[][]>();

/**
 * A cohort's watch ids, grouped by encoded length (ResponseBatch.sendRun
 * takes heads of one length), kept while the cohort's membership holds.
 */
function headRuns(sinks: readonly WatchSink[]): Buffer[][] {
  let runs = headRunsOf.get(sinks);
  if (!runs) {
    const byLength = new Map<number, Buffer[]>();
    for (const s of sinks) {
      const id = (s as StreamSink).idBytes;
      let run = byLength.get(id.length);
      if (!run) byLength.set(id.length, (run = []));
      run.push(id);
    }
    runs = [...byLength.values()];
    headRunsOf.set(sinks, runs);
  }
  return runs;
}

/** Field 2 (watch_id), varint wire type. */
const WATCH_ID_TAG = (2 << 3) | 0;
/** The most an encoded watch id takes (a negative one, through the encoder: tag and a 10-byte varint). */
const ID_BYTES_MAX = 11;
const EMPTY = Buffer.alloc(0);

/**
 * `stopping`: aborted when the server shuts down. Every stream then ends with
 * UNAVAILABLE ("etcdserver: server stopped"), as etcd's dropped connections
 * do, so clients resume elsewhere or later; a graceful shutdown would
 * otherwise wait for streams that never end on their own.
 */
export function watchService(engine: Engine, hub: WatchHub, encode: WatchEncoder, progressIntervalMs = PROGRESS_NOTIFY_INTERVAL_MS, stopping?: AbortSignal): ServiceImplementation {
  if (stopping) setMaxListeners(0, stopping); // one listener per open stream, removed when it closes
  const heads = new ResponseHeads(engine.headers, encode);
  const fragmentAt = messageBytesMax(engine.requestBytesMax);
  return {
    Watch: (call: ServerCall) => {
      const caller = streamCaller(engine, call);
      if (!caller) return;
      const user = caller.user;
      const watches = new Map<number, Watcher>();
      const progress = new Set<number>();
      let nextId = 0;
      const out = new ResponseBatch(call, WATCH_STREAM_BUFFER_BYTES, () => {
        call.resumeRequests();
        for (const w of watches.values()) hub.resume(w);
      });
      const channel: WatchChannel = {
        sendAll: (sinks, events, revision) => {
          const body = responseBody(events, revision, heads, encode);
          let accepting = true;
          if (events.length > 1 && body.length + ID_BYTES_MAX >= fragmentAt && sinks.some((s) => (s as StreamSink).fragment)) {
            for (const s of sinks) accepting = s.send(events, revision) && accepting; // some split it, the others not
            return accepting;
          }
          for (const run of headRuns(sinks)) accepting = out.sendRun(run, body) && accepting;
          return accepting;
        },
      };
      // The hub's revision, not the durable one: a created or progress response must not claim events not yet sent.
      // An answer to a request that finds the stream full stops reading requests until it drains: a client that
      // sends creates, cancels or progress requests without reading must not grow the stream's buffer.
      const write = (m: Wire, revision = hub.revision): void => {
        if (!out.send(EMPTY, encode({ header: header(engine.headers, revision), ...m }))) call.pauseRequests();
      };
      const fail = (e: unknown) => {
        out.flush(); // what was sent before the failure goes first
        call.fail(toStatus(e));
      };
      const stop = () => fail(new MergekvError("Unavailable"));
      const closeAll = () => {
        for (const w of watches.values()) hub.remove(w);
        watches.clear();
        clearInterval(timer);
        stopping?.removeEventListener("abort", stop);
      };
      const timer = setInterval(() => {
        for (const id of progress) if (watches.get(id)?.synced) write({ watch_id: id });
      }, progressIntervalMs);
      timer.unref();
      stopping?.addEventListener("abort", stop);

      const create = (r: Wire) => {
        const key = wireKey(r.key);
        const rangeEnd = wireKey(r.range_end);
        try {
          engine.auth.authorize(user, [{ access: "read", key, rangeEnd }]);
        } catch (e) {
          // As etcd 3.4: watch_id -1 (no id is taken) and the Go status text as the reason.
          write({ watch_id: "-1", created: true, canceled: true, cancel_reason: statusText(e) });
          return;
        }
        let id = int(r.watch_id, "watch_id");
        if (id === 0) {
          while (watches.has(nextId)) nextId++;
          id = nextId++;
        } else if (watches.has(id)) {
          write({ watch_id: id, created: true, canceled: true, cancel_reason: "mvcc: duplicate watch ID provided on the WatchStream" });
          return;
        }
        if (watches.size >= WATCHES_PER_STREAM_MAX) {
          write({ watch_id: id, created: true, canceled: true, cancel_reason: `mergekv: more than ${WATCHES_PER_STREAM_MAX} watches on one stream` });
          return;
        }
        const filters: string[] = r.filters ?? [];
        write({ watch_id: id, created: true });
        if (r.progress_notify) progress.add(id);
        let canceled = false;
        const idBytes = heads.watchId(id);
        const fragment = !!r.fragment;
        const sink: StreamSink = {
          channel,
          idBytes,
          fragment,
          send: (events, revision) => {
            if (!fragment) return out.send(idBytes, responseBody(events, revision, heads, encode));
            let accepting = true;
            for (const body of fragmentBodies(idBytes, events, revision, heads, encode, fragmentAt)) accepting = out.send(idBytes, body) && accepting;
            return accepting;
          },
          cancel: (reason, compactRevision) => {
            canceled = true;
            watches.delete(id);
            progress.delete(id);
            write({ watch_id: id, canceled: true, cancel_reason: reason, compact_revision: compactRevision });
          },
        };
        const spec = {
          key,
          rangeEnd,
          startRevision: int(r.start_revision, "start_revision"),
          prevKv: !!r.prev_kv,
          noPut: filters.includes("Noput"),
          noDelete: filters.includes("Nodelete"),
        };
        const w = hub.add(spec, sink);
        if (!canceled) watches.set(id, w);
      };

      call.on("data", (req: Wire) => {
        try {
          if (req.create_request) create(req.create_request);
          else if (req.cancel_request) {
            const id = int(req.cancel_request.watch_id, "watch_id");
            const w = watches.get(id);
            if (!w) return; // etcd ignores an unknown id
            hub.remove(w);
            watches.delete(id);
            progress.delete(id);
            write({ watch_id: id, canceled: true });
          } else if (req.progress_request) write({ watch_id: "-1" });
        } catch (e) {
          engine.onInternalError(e);
          fail(e);
        }
      });
      // A client that has sent its last request still gets events: as etcd (its recvLoop returns on
      // EOF without ending the stream), the watches live until the client cancels or goes away.
      call.on("close", closeAll);
    },
  };
}
