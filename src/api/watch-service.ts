/**
 * etcd's Watch service: one bidi stream carries many watches. The stream
 * handler only translates; the WatchHub (backend) decides what is sent.
 */
import * as grpc from "@grpc/grpc-js";
import { setMaxListeners } from "node:events";
import { Engine } from "../server";
import { WatchHub, Watcher } from "../backend/watch-hub";
import { MvccEvent } from "../backend/mvcc";
import { fromKv, int, key as wireKey, Wire } from "./convert";
import { tokenOf, header, statusText, toServiceError } from "./rpc";
import { MergekvError } from "../errors";

/** etcd's default --experimental-watch-progress-notify-interval. */
export const PROGRESS_NOTIFY_INTERVAL_MS = 10 * 60 * 1000;
/** Watches one stream may hold: bounds what one client can make the server track. */
export const WATCHES_PER_STREAM_MAX = 10_000;


/** Wire form of each event, built once however many watchers it goes to (events are never mutated). */
const wireEvents = new WeakMap<MvccEvent, Wire>();

function toEvent(e: MvccEvent): Wire {
  let out = wireEvents.get(e);
  if (!out) {
    out = { type: e.type === "put" ? "Put" : "Delete", kv: fromKv(e.kv) };
    if (e.prev) out.prev_kv = fromKv(e.prev);
    wireEvents.set(e, out);
  }
  return out;
}

/**
 * `stopping`: aborted when the server shuts down. Every stream then ends with
 * UNAVAILABLE ("etcdserver: server stopped"), as etcd's dropped connections
 * do, so clients resume elsewhere or later; a graceful shutdown would
 * otherwise wait for streams that never end on their own.
 */
export function watchService(engine: Engine, hub: WatchHub, progressIntervalMs = PROGRESS_NOTIFY_INTERVAL_MS, stopping?: AbortSignal): grpc.UntypedServiceImplementation {
  if (stopping) setMaxListeners(0, stopping); // one listener per open stream, removed when it closes
  return {
    Watch: (call: grpc.ServerDuplexStream<Wire, Wire>) => {
      let user: string | undefined;
      try {
        user = engine.auth.identify(tokenOf(call.metadata));
      } catch (e) {
        call.emit("error", toServiceError(e));
        return;
      }
      const watches = new Map<number, Watcher>();
      const progress = new Set<number>();
      let nextId = 0;
      const write = (m: Wire, revision = engine.backend.revision): boolean => call.write({ header: header(engine.headers, revision), ...m });
      const stop = () => call.emit("error", toServiceError(new MergekvError("Unavailable")));
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
        const w = hub.add(
          {
            key,
            rangeEnd,
            startRevision: int(r.start_revision, "start_revision"),
            prevKv: !!r.prev_kv,
            noPut: filters.includes("Noput"),
            noDelete: filters.includes("Nodelete"),
          },
          {
            send: (events, revision) => write({ watch_id: id, events: events.map(toEvent) }, revision),
            cancel: (reason, compactRevision) => {
              canceled = true;
              watches.delete(id);
              progress.delete(id);
              write({ watch_id: id, canceled: true, cancel_reason: reason, compact_revision: compactRevision });
            },
          },
        );
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
          call.emit("error", toServiceError(e)); // destroy() would end the stream without a status: the client would hang
        }
      });
      call.on("drain", () => {
        for (const w of watches.values()) hub.resume(w);
      });
      call.on("end", () => { closeAll(); call.end(); });
      call.on("cancelled", closeAll);
      call.on("error", closeAll);
    },
  };
}
