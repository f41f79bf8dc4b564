/**
 * etcd's KV, Maintenance and Cluster services: each handler converts the
 * request, calls the engine, converts the result. Nothing else.
 */
import { Engine } from "../server";
import { header, rootUnary, tokenOf, toStatus, unary, UnaryHandler, UnaryOptions } from "./rpc";
import { ServerCall } from "./grpc-call";
import { ServiceImplementation } from "./grpc-server";
import { ROOT_ONLY, deleteNeeds, leaseNeeds, putNeeds, rangeNeeds, txnNeeds } from "./permissions";
import { snapshotChunks } from "../persist/snapshot-file";
import { fromDeleteRange, fromPut, fromRange, fromTxn, int, toDeleteRange, toPut, toRange, toTxn, Wire } from "./convert";
import { RangeResult, PutResult, DeleteRangeResult, TxnResult, TxnRequest, HashKVResult } from "../frontend/requests";
import { AlarmType } from "../backend/alarms";
import { Member } from "../backend/members";
import { GrpcStatus, MergekvError } from "../errors";

/** While NOSPACE is active, writes that add data are refused, as etcd does. */
export function refuseWhenFull(engine: Engine): void {
  if (engine.alarms.has("Nospace")) throw new MergekvError("NoSpace");
}

function hasPuts(t: TxnRequest): boolean {
  return t.success.concat(t.failure).some((op) => "put" in op || ("txn" in op && hasPuts(op.txn)));
}

/** The etcd version mergekv answers as (the API level its clients expect). */
export const ETCD_API_VERSION = "3.4.23";
/** What etcd 3.4's /version reports as the cluster's version. */
export const ETCD_CLUSTER_VERSION = "3.4.0";

export function kvService(engine: Engine): ServiceImplementation {
  const h = (fn: UnaryHandler, opts?: UnaryOptions) => unary(engine, fn, opts);
  return {
    Range: h(async (req, caller) => {
      const range = toRange(req);
      engine.auth.authorize(caller.user, rangeNeeds(range));
      const r = await engine.pool.execute({ kind: "range", req: range });
      return { revision: r.revision, body: fromRange(r.result as RangeResult) };
    }, { readOnly: true }),
    Put: h(async (req, caller) => {
      const put = toPut(req);
      engine.auth.authorize(caller.user, putNeeds(put));
      // etcd 3.4 checks this on Put only (not on a Txn's puts); the keys are listed only when auth is on.
      if (put.lease !== 0 && engine.auth.enabled) engine.auth.authorize(caller.user, leaseNeeds(engine.backend.leases.get(put.lease)?.keys));
      refuseWhenFull(engine);
      const r = await engine.pool.execute({ kind: "put", req: put });
      return { revision: r.revision, body: fromPut(r.result as PutResult) };
    }),
    DeleteRange: h(async (req, caller) => {
      const del = toDeleteRange(req);
      engine.auth.authorize(caller.user, deleteNeeds(del));
      const r = await engine.pool.execute({ kind: "deleteRange", req: del });
      return { revision: r.revision, body: fromDeleteRange(r.result as DeleteRangeResult) };
    }),
    Txn: h(async (req, caller) => {
      const txn = toTxn(req);
      engine.auth.authorize(caller.user, txnNeeds(txn));
      if (hasPuts(txn)) refuseWhenFull(engine);
      const r = await engine.pool.execute({ kind: "txn", req: txn });
      return { revision: r.revision, body: fromTxn(r.result as TxnResult, r.revision) };
    }),
    Compact: h(async (req, caller) => {
      engine.auth.authorize(caller.user, ROOT_ONLY);
      await engine.backend.compact(int(req.revision, "revision"));
      return { revision: engine.backend.revision, body: {} };
    }),
  };
}

export function maintenanceService(engine: Engine): ServiceImplementation {
  const h = (fn: UnaryHandler, opts?: UnaryOptions) => unary(engine, fn, opts);
  const root = (fn: UnaryHandler) => rootUnary(engine, fn);
  return {
    Status: h(async () => {
      const dbSize = String(await engine.store.sizeBytes());
      const rev = engine.backend.revision;
      return {
        revision: rev,
        body: {
          version: ETCD_API_VERSION,
          dbSize,
          dbSizeInUse: dbSize,
          leader: engine.headers.memberId,
          raftIndex: String(rev),
          raftAppliedIndex: String(rev),
          raftTerm: String(engine.headers.raftTerm),
          isLearner: false,
          errors: [],
        },
      };
    }, { public: true }),
    HashKV: root(async (req) => {
      const r = await engine.pool.execute({ kind: "hashKV", req: { revision: int(req.revision, "revision") } });
      const result = r.result as HashKVResult;
      return { revision: r.revision, body: { hash: result.hash, compact_revision: String(result.compactRevision) } };
    }),
    Alarm: root(async (req) => {
      const alarm = req.alarm as AlarmType | "None";
      if (req.action === "Activate" && alarm !== "None") engine.alarms.activate(alarm);
      if (req.action === "Deactivate" && alarm !== "None") engine.alarms.deactivate(alarm);
      const alarms = engine.alarms.list().map((a) => ({ memberID: engine.headers.memberId, alarm: a }));
      return { revision: engine.backend.revision, body: { alarms } };
    }),
    /** Streams every entry of the store as one iterator saw it: a consistent point in time. */
    Snapshot: (call: ServerCall) => {
      void (async () => {
        engine.auth.authorize(engine.auth.identify(tokenOf(call)), ROOT_ONLY);
        const total = await engine.store.sizeBytes();
        let sent = 0;
        for await (const blob of snapshotChunks(engine.store)) {
          if (call.closed) return; // the client went away: stop reading the store
          sent += blob.length;
          const more = call.write({ header: header(engine.headers, engine.backend.revision), remaining_bytes: String(Math.max(0, total - sent)), blob });
          if (!more) await call.drained();
        }
        call.end();
      })().catch((e) => {
        const status = toStatus(e);
        if (status.code === GrpcStatus.Internal) engine.onInternalError(e);
        call.fail(status);
      });
    },
    /** Defragment is mergekv's online compaction trigger: snapshot, drop covered records, reclaim space. */
    Defragment: root(async () => {
      await engine.compactStorage();
      return { revision: engine.backend.revision, body: {} };
    }),
  };
}

export function clusterService(engine: Engine): ServiceImplementation {
  const h = (fn: UnaryHandler, opts?: UnaryOptions) => unary(engine, fn, opts);
  const root = (fn: UnaryHandler) => rootUnary(engine, fn);
  const members = () => engine.members.list().map(toMember);
  const urls = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
  return {
    MemberList: h(async () => ({ revision: engine.backend.revision, body: { members: members() } }), { public: true }),
    MemberAdd: root(async (req) => {
      const member = await engine.members.add(urls(req.peerURLs), !!req.isLearner);
      return { revision: engine.backend.revision, body: { member: toMember(member), members: members() } };
    }),
    MemberRemove: root(async (req) => {
      await engine.members.remove(String(req.ID ?? "0"));
      return { revision: engine.backend.revision, body: { members: members() } };
    }),
    MemberUpdate: root(async (req) => {
      await engine.members.update(String(req.ID ?? "0"), urls(req.peerURLs));
      return { revision: engine.backend.revision, body: { members: members() } };
    }),
  };
}

function toMember(m: Member): Wire {
  return { ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner };
}


export type { Wire };
