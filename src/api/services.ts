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
import { RangeResult, PutResult, DeleteRangeResult, TxnResult, TxnRequest, HashKVResult, KvRequest } from "../frontend/requests";
import { validateRequest } from "../frontend/validate";
import { AlarmMember, Alarms, alarmText } from "../backend/alarms";
import { Member } from "../backend/members";
import { GrpcStatus, MergekvError } from "../errors";
import { crc32 } from "node:zlib";

/**
 * What a write is refused while an alarm is raised, as etcd's appliers do:
 * NOSPACE refuses writes that add data (puts, lease grants), CORRUPT every
 * write (deletes, compactions and lease revocations too). Reads go on.
 */
export function refuseUnderAlarms(engine: Engine, write: "adds" | "removes"): void {
  if (engine.alarms.has("Corrupt")) throw new MergekvError("CorruptCluster");
  if (write === "adds" && engine.alarms.has("Nospace")) throw new MergekvError("NoSpace");
}

/** What a Txn may write, whichever branch runs: "adds" if it has a put, "removes" if only deletes, null if it only reads. */
function txnWrites(t: TxnRequest): "adds" | "removes" | null {
  let writes: "adds" | "removes" | null = null;
  for (const op of t.success.concat(t.failure)) {
    const w = "put" in op ? "adds" : "deleteRange" in op ? "removes" : "txn" in op ? txnWrites(op.txn) : null;
    if (w === "adds") return w;
    writes ??= w;
  }
  return writes;
}

/** The etcd version mergekv answers as (the API level its clients expect). */
export const ETCD_API_VERSION = "3.4.23";
/** What etcd 3.4's /version reports as the cluster's version. */
export const ETCD_CLUSTER_VERSION = "3.4.0";

export function kvService(engine: Engine): ServiceImplementation {
  const h = (fn: UnaryHandler, opts?: UnaryOptions) => unary(engine, fn, opts);
  /**
   * The caller of a KV request, identified after the request's form is
   * checked: etcd checks a request's form (an empty key, too many Txn ops, a
   * key written twice...) before who is asking and what they may do, so
   * with auth on a request that is malformed and also anonymous, badly
   * signed or not permitted gets the form's error (found by the differential
   * test). The frontend checks every request's form anyway, so with auth
   * off this one is skipped.
   */
  const callerOf = (r: KvRequest, call: ServerCall): string | undefined => {
    if (!engine.auth.enabled) return undefined;
    validateRequest(r, engine.txnOpsMax);
    return engine.auth.identify(tokenOf(call));
  };
  /** KV handlers identify their caller themselves (callerOf), after the form. */
  const kv = (fn: UnaryHandler, opts?: UnaryOptions) => unary(engine, fn, { ...opts, identifiesCaller: true });
  return {
    Range: kv(async (req, _, call) => {
      const range = toRange(req);
      engine.auth.authorize(callerOf({ kind: "range", req: range }, call), rangeNeeds(range));
      const r = await engine.pool.execute({ kind: "range", req: range });
      return { revision: r.revision, body: fromRange(r.result as RangeResult) };
    }, { readOnly: true }),
    Put: kv(async (req, _, call) => {
      const put = toPut(req);
      const user = callerOf({ kind: "put", req: put }, call);
      engine.auth.authorize(user, putNeeds(put));
      // etcd 3.4 checks this on Put only (not on a Txn's puts); the keys are listed only when auth is on.
      if (put.lease !== 0 && engine.auth.enabled) engine.auth.authorize(user, leaseNeeds(engine.backend.leases.get(put.lease)?.keys));
      refuseUnderAlarms(engine, "adds");
      const r = await engine.pool.execute({ kind: "put", req: put });
      return { revision: r.revision, body: fromPut(r.result as PutResult) };
    }),
    DeleteRange: kv(async (req, _, call) => {
      const del = toDeleteRange(req);
      engine.auth.authorize(callerOf({ kind: "deleteRange", req: del }, call), deleteNeeds(del));
      refuseUnderAlarms(engine, "removes");
      const r = await engine.pool.execute({ kind: "deleteRange", req: del });
      return { revision: r.revision, body: fromDeleteRange(r.result as DeleteRangeResult) };
    }),
    Txn: kv(async (req, _, call) => {
      const txn = toTxn(req);
      engine.auth.authorize(callerOf({ kind: "txn", req: txn }, call), txnNeeds(txn));
      const writes = txnWrites(txn);
      if (writes) refuseUnderAlarms(engine, writes);
      const r = await engine.pool.execute({ kind: "txn", req: txn });
      return { revision: r.revision, body: fromTxn(r.result as TxnResult, r.revision) };
    }),
    Compact: h(async (req, caller) => {
      engine.auth.authorize(caller.user, ROOT_ONLY);
      refuseUnderAlarms(engine, "removes");
      await engine.backend.compact(int(req.revision, "revision"), !!req.physical);
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
          errors: engine.alarms.get("None").map(alarmText),
        },
      };
    }, { public: true }),
    HashKV: root(async (req) => {
      const r = await engine.pool.execute({ kind: "hashKV", req: { revision: int(req.revision, "revision") } });
      const result = r.result as HashKVResult;
      return { revision: r.revision, body: { hash: result.hash, compact_revision: String(result.compactRevision) } };
    }),
    /**
     * Hash: etcd hashes its whole backend file ("for testing only"); mergekv
     * hashes what its backend holds: the revision, the compaction point, every
     * live key with its value and lease (HashKV's hash), and the leases.
     */
    Hash: root(async () => {
      const r = await engine.pool.execute({ kind: "hashKV", req: { revision: 0 } });
      const kv = r.result as HashKVResult;
      const state = Buffer.from(JSON.stringify([r.revision, kv.compactRevision, kv.hash, engine.backend.leases.ids()]));
      return { revision: r.revision, body: { hash: crc32(state) } };
    }),
    /** etcd's alarm store: GET lists (one type, or all for NONE); ACTIVATE and DEACTIVATE answer the alarm they changed. */
    Alarm: root(async (req) => {
      const alarm = req.alarm;
      if (!Alarms.isType(alarm)) throw new MergekvError("InvalidArgument", `mergekv: unknown alarm type ${JSON.stringify(alarm)}`);
      if (!["Get", "Activate", "Deactivate"].includes(req.action as string)) throw new MergekvError("InvalidArgument", `mergekv: unknown alarm action ${JSON.stringify(req.action)}`);
      const memberId = String(req.memberID ?? "0");
      let alarms: AlarmMember[] = [];
      if (req.action === "Get") alarms = engine.alarms.get(alarm);
      else if (req.action === "Activate") alarms = [(await engine.alarms.activate(memberId, alarm)).member];
      else if (req.action === "Deactivate") alarms = [await engine.alarms.deactivate(memberId, alarm)].filter((m): m is AlarmMember => m !== undefined);
      return { revision: engine.backend.revision, body: { alarms: alarms.map((m) => ({ memberID: m.memberId, alarm: m.alarm })) } };
    }),
    /**
     * Every mergekv member takes writes; there is no raft leader. A single
     * server leads itself, so a move to itself succeeds, and a move to an
     * unknown member or a learner gets etcd's error. Anyone may ask, as on
     * etcd, which checks no token for it.
     */
    MoveLeader: h(async (req) => {
      const target = String(req.targetID ?? "0");
      const member = engine.members.list().find((m) => m.id === target);
      if (!member || member.isLearner) throw new MergekvError("BadLeaderTransferee");
      if (target !== engine.headers.memberId) throw new MergekvError("NoLeadership");
      return { revision: engine.backend.revision, body: {} };
    }, { public: true }),
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
    /**
     * etcd promotes a learner once it holds 90% of the leader's log. Nothing
     * replicates to a mergekv member yet, so a learner is never in sync:
     * the answer etcd gives for a learner that has not started.
     */
    MemberPromote: root(async (req) => {
      const member = engine.members.list().find((m) => m.id === String(req.ID ?? "0"));
      if (!member) throw new MergekvError("MemberNotFound");
      if (!member.isLearner) throw new MergekvError("MemberNotLearner");
      throw new MergekvError("LearnerNotReady");
    }),
  };
}

function toMember(m: Member): Wire {
  return { ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner };
}


export type { Wire };
