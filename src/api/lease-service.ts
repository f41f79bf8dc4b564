/**
 * etcd's Lease service: grant, revoke, keep-alive (a bidi stream), time to
 * live, list. Handlers convert and call the backend's lease table.
 */
import { MergekvError } from "../errors";
import { setMaxListeners } from "node:events";
import { Engine } from "../server";
import { keyToBytes } from "../persist/encoding";
import { int, leaseId, Wire } from "./convert";
import { header, streamCaller, toStatus, unary, UnaryHandler } from "./rpc";
import { ServerCall } from "./grpc-call";
import { ServiceImplementation } from "./grpc-server";
import { refuseUnderAlarms } from "./services";
import { leaseNeeds } from "./permissions";

/** `stopping`: aborted when the server shuts down (see watchService). */
export function leaseService(engine: Engine, stopping?: AbortSignal): ServiceImplementation {
  if (stopping) setMaxListeners(0, stopping); // one listener per open keep-alive stream, removed when it closes
  // Any authenticated user may use leases (identify() refuses a missing or bad token when auth is on);
  // revoking one needs write on every key it holds, as in etcd.
  const h = (fn: UnaryHandler) => unary(engine, fn);
  const backend = () => engine.backend;
  return {
    LeaseGrant: h(async (req) => {
      refuseUnderAlarms(engine, "adds");
      const lease = await backend().grantLease(int(req.ID, "ID"), int(req.TTL, "TTL"));
      return { revision: backend().revision, body: { ID: String(lease.id), TTL: String(lease.ttlSeconds), error: "" } };
    }),
    LeaseRevoke: h(async (req, caller) => {
      const id = leaseId(req.ID);
      if (engine.auth.enabled) engine.auth.authorize(caller.user, leaseNeeds(backend().leases.get(id)?.keys));
      refuseUnderAlarms(engine, "removes");
      const rev = await backend().revokeLease(id);
      return { revision: rev, body: {} };
    }),
    LeaseTimeToLive: h(async (req) => {
      const lease = backend().leases.get(leaseId(req.ID));
      if (!lease) return { revision: backend().revision, body: { ID: req.ID, TTL: "-1", grantedTTL: "0", keys: [] } };
      return {
        revision: backend().revision,
        body: {
          ID: req.ID,
          TTL: String(backend().leases.remainingSeconds(lease)),
          grantedTTL: String(lease.ttlSeconds),
          keys: req.keys ? [...lease.keys].sort().map(keyToBytes) : [],
        },
      };
    }),
    LeaseLeases: h(async () => ({
      revision: backend().revision,
      body: { leases: backend().leases.ids().map((id) => ({ ID: String(id) })) },
    })),
    /** Each request renews one lease; an unknown id answers TTL 0 and the stream stays open, as etcd. */
    LeaseKeepAlive: (call: ServerCall) => {
      if (!streamCaller(engine, call)) return;
      // Ended with UNAVAILABLE when the server stops (as the watch streams), so shutdown does not wait for it.
      const stop = () => call.fail(toStatus(new MergekvError("Unavailable")));
      stopping?.addEventListener("abort", stop);
      call.on("data", (req: Wire) => {
        try {
          const ttl = backend().leases.keepAlive(leaseId(req.ID));
          const more = call.write({ header: header(engine.headers, backend().revision), ID: req.ID, TTL: String(ttl) });
          if (!more) call.holdRequestsUntilDrained(); // one answer per request: a client that does not read must stop sending
        } catch (e) {
          call.fail(toStatus(e));
        }
      });
      call.on("end", () => call.end());
      call.on("close", () => stopping?.removeEventListener("abort", stop));
    },
  };
}
