/**
 * etcd's Lock (v3lockpb) and Election (v3electionpb) services, which etcd
 * 3.4 serves next to the KV API and clients such as jetcd's lock and
 * election clients call. The recipes themselves are in recipes.ts; these
 * handlers convert, call them and fill the header, as every other service.
 * Their messages are declared in proto.ts.
 */
import { Engine } from "../server";
import { ERROR_TABLE, GrpcStatus, MergekvError } from "../errors";
import { WatchHub } from "../backend/watch-hub";
import { KeyValue } from "../backend/mvcc";
import { keyToBytes } from "../persist/encoding";
import { bytes, fromKv, int, key, Wire } from "./convert";
import { setMaxListeners } from "node:events";
import { header, streamCaller, toStatus, unary, UnaryHandler, whenClosed } from "./rpc";
import { ServerCall } from "./grpc-call";
import { ServiceImplementation } from "./grpc-server";
import { LeaderKey, Recipes } from "./recipes";

/**
 * etcd runs these services over an in-process client and returns what its
 * calls fail with as plain errors: the caller sees code Unknown with the
 * message (a Lock on an unknown lease: code 2, "etcdserver: requested lease
 * not found"). The recipes' own errors already carry code Unknown.
 */
function untranslated(e: unknown): unknown {
  const translated = e instanceof MergekvError && ERROR_TABLE[e.code].status !== GrpcStatus.Unknown && e.code !== "Internal" && e.code !== "Unavailable";
  return translated ? new MergekvError("Untranslated", e.message, e) : e;
}

function asEtcdRecipe(fn: UnaryHandler): UnaryHandler {
  return (req, caller, call) => fn(req, caller, call).catch((e: unknown) => Promise.reject(untranslated(e)));
}

const leaderOf = (w: Wire | null | undefined): LeaderKey => {
  if (!w) throw new MergekvError("MissingLeaderKey");
  return { name: key(w.name), key: key(w.key), rev: int(w.rev, "rev"), lease: int(w.lease, "lease") };
};

/**
 * What ends a call's wait: the call closing (the client went away or its
 * deadline passed) or the server stopping (`stopping`), which ends it with
 * UNAVAILABLE, as the watch streams are, so that shutdown does not wait.
 */
function waitUntil(stopping?: AbortSignal): (call: ServerCall) => AbortSignal {
  if (stopping) setMaxListeners(0, stopping); // one listener per waiting call, removed when it ends
  return (call) => {
    const closed = whenClosed(call);
    if (!stopping) return closed;
    // AbortSignal.any is node 20.3's; engines allow 20.0.
    const ac = new AbortController();
    const abort = () => ac.abort();
    if (closed.aborted || stopping.aborted) abort();
    closed.addEventListener("abort", abort, { once: true });
    stopping.addEventListener("abort", abort, { once: true });
    closed.addEventListener("abort", () => stopping.removeEventListener("abort", abort), { once: true });
    return ac.signal;
  };
}

export function lockService(engine: Engine, watches: WatchHub, stopping?: AbortSignal): ServiceImplementation {
  const recipes = new Recipes(engine, watches);
  const until = waitUntil(stopping);
  const h = (fn: UnaryHandler) => unary(engine, asEtcdRecipe(fn));
  return {
    // Waits as long as an older holder keeps the lock: until then the call is open, as on etcd.
    Lock: h(async (req, caller, call) => {
      const r = await recipes.lock(key(req.name), int(req.lease, "lease"), caller.user, until(call));
      return { revision: r.revision, body: { key: keyToBytes(r.key) } };
    }),
    Unlock: h(async (req, caller) => ({ revision: await recipes.deleteKey(key(req.key), caller.user), body: {} })),
  };
}

export function electionService(engine: Engine, watches: WatchHub, stopping?: AbortSignal): ServiceImplementation {
  const recipes = new Recipes(engine, watches);
  const until = waitUntil(stopping);
  const h = (fn: UnaryHandler) => unary(engine, asEtcdRecipe(fn));
  const wireLeader = (l: LeaderKey) => ({ name: keyToBytes(l.name), key: keyToBytes(l.key), rev: l.rev, lease: l.lease });
  return {
    Campaign: h(async (req, caller, call) => {
      const r = await recipes.campaign(key(req.name), int(req.lease, "lease"), bytes(req.value), caller.user, until(call));
      return { revision: r.revision, body: { leader: wireLeader(r.leader) } };
    }),
    Proclaim: h(async (req, caller) => ({ revision: await recipes.proclaim(leaderOf(req.leader), bytes(req.value), caller.user), body: {} })),
    Leader: h(async (req, caller) => {
      const r = await recipes.leader(key(req.name), caller.user);
      return { revision: r.revision, body: { kv: fromKv(r.kv) } };
    }),
    Resign: h(async (req, caller) => ({ revision: await recipes.resign(leaderOf(req.leader), caller.user), body: {} })),
    /** A response per leader value, until the client goes away. */
    Observe: (call: ServerCall) => {
      const caller = streamCaller(engine, call);
      if (!caller) return;
      const req = call.request as Wire;
      const emit = (revision: number, kv: KeyValue) => call.write({ header: header(engine.headers, revision), kv: fromKv(kv) });
      recipes.observe(key(req.name), caller.user, until(call), emit, () => call.drained())
        .then(() => call.end(), (e) => call.fail(toStatus(untranslated(e))));
    },
  };
}
