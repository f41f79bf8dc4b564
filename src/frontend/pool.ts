/**
 * The main thread's side of the frontends: spawns the worker threads, routes
 * requests to them, and relays between them and the backend.
 *
 * Routing: a write goes to the frontend that owns its key (hash of the key,
 * for a Txn its first compared or written key), so compare-and-swap on one
 * key is decided by one replica that has every earlier write to it; reads go
 * round-robin (any replica serves them). REDESIGN.md has the measurements.
 */
import { Worker } from "node:worker_threads";
import * as path from "node:path";
import { Backend, BackendMessage } from "../backend/backend";
import { Bootstrap } from "../backend/replica";
import { bucketOf, ownerOf } from "../backend/buckets";
import { AppliedEntry } from "../backend/replica";
import { MergekvError, fromWireError } from "../errors";
import { FromFrontend, Outbox, RequestItem, ToFrontend } from "./messages";
import { LeaseChange } from "../backend/leases";
import { KvRequest } from "./requests";
import { EarlyReply, Executed } from "./executor";
import { WarmUpReport } from "./warm-up";

interface Waiting {
  resolve: (r: Executed) => void;
  reject: (e: Error) => void;
  write: boolean;
}

/** Lease changes queued for a frontend that gets no requests: past this many they go on their own. */
export const LEASE_UPDATES_QUEUED_MAX = 1_024;
/** Applied entries held for a frontend that does not wait for them: past this many they go on their own. */
export const APPLIED_HELD_MAX = 1_024;

/**
 * The entries frontend `i` (of `frontends`; `authors` maps each actor to its
 * frontend) is sent: every write (its MVCC needs all), and only the changes
 * it applies, to buckets it owns by other actors (its replica skips its
 * own). A write is routed to its bucket's owner, so most changes go back to
 * no frontend; posting them cost a structured clone of their bytes and
 * hashes on both threads.
 */
export function entriesFor(i: number, frontends: number, authors: ReadonlyMap<string, number>, entries: readonly AppliedEntry[]): AppliedEntry[] {
  return entries.map((e) => {
    const mine = e.actor !== undefined && authors.get(e.actor) === i;
    return { ...e, changes: mine ? [] : e.changes.filter((c) => ownerOf(c.bucket, frontends) === i) };
  });
}

export class FrontendPool {
  private readonly workers: Worker[] = [];
  private readonly outboxes: Outbox<RequestItem>[] = [];
  /**
   * Lease grants and revocations per frontend, sent with its next requests
   * message (one per turn, however many leases changed); ahead of requests
   * queued after them, so a revoke's key deletion finds the lease gone.
   */
  private readonly leaseUpdates: (LeaseChange[] | null)[] = [];
  private readonly waiting = new Map<number, Waiting>();
  /** Per frontend: whether it said it waits for applied entries (Executor.awaitingApplied). */
  private readonly awaiting: boolean[] = [];
  /**
   * Per frontend: applied entries not yet posted. A frontend none of whose
   * requests waits for them gets them with its next requests message
   * (applied before its requests, so reads still see every answered write);
   * each posting to an idle thread costs its wake-up, and often preempts
   * the main thread.
   */
  private readonly heldApplied: AppliedEntry[][] = [];
  /** Per frontend, by envelope seq: results that came with changes not yet durable (bounded by INFLIGHT_ENVELOPES_MAX). */
  private readonly earlyReplies: Map<number, EarlyReply>[] = [];
  private readonly frontendOfActor = new Map<string, number>();
  private nextId = 1;
  private nextReader = 0;
  private stopping = false;
  readonly actors: string[] = [];
  /** Each frontend's warm-up before it was ready (frontend/warm-up.ts). */
  readonly warmUps: WarmUpReport[] = [];

  /** `txnOpsMax`: the server's --max-txn-ops, which the frontends check. */
  constructor(readonly size: number, private readonly backend: Backend, private readonly onFatal: (message: string) => void, private readonly txnOpsMax: number) {}

  /** Starts every worker from the recovered state; resolves when all are ready. */
  async start(bootstrap: Bootstrap): Promise<void> {
    const script = path.join(__dirname, "worker.js");
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.size; i++) {
      const w = new Worker(script);
      this.workers.push(w);
      this.leaseUpdates.push(null);
      this.earlyReplies.push(new Map());
      this.awaiting.push(false);
      this.heldApplied.push([]);
      this.outboxes.push(new Outbox((items) => {
        const leases = this.leaseUpdates[i];
        this.leaseUpdates[i] = null;
        const applied = this.heldApplied[i];
        if (applied.length > 0) this.heldApplied[i] = [];
        this.post(i, { type: "requests", items, ...(leases ? { leases } : {}), ...(applied.length > 0 ? { applied } : {}) });
      }));
      ready.push(new Promise((resolve, reject) => {
        w.on("message", (m: FromFrontend) => {
          if (m.type === "ready") {
            this.actors[i] = m.actor;
            this.warmUps[i] = m.warmUp;
            this.frontendOfActor.set(m.actor, i);
            resolve();
          } else this.onMessage(i, m);
        });
        w.on("error", (e: Error) => { reject(e); this.fail(`frontend ${i} crashed: ${e.stack ?? e}`); });
        w.on("exit", (code) => { if (!this.stopping) this.fail(`frontend ${i} exited with code ${code}`); });
      }));
      this.post(i, { type: "init", index: i, frontends: this.size, acknowledge: this.acknowledging, txnOpsMax: this.txnOpsMax, bootstrap: this.owned(i, bootstrap) });
    }
    await Promise.all(ready);
  }

  private post(i: number, m: ToFrontend): void {
    this.workers[i].postMessage(m);
  }

  /** The part of the recovered state frontend `i` keeps: its buckets' documents, every key's history. */
  private owned(i: number, b: Bootstrap): Bootstrap {
    return { ...b, buckets: b.buckets.filter(([bucket]) => ownerOf(bucket, this.size) === i), entries: entriesFor(i, this.size, this.frontendOfActor, b.entries) };
  }

  /** Backend fan-out: every frontend gets every entry, in order, with the changes it applies (entriesFor). */
  broadcast(m: BackendMessage): void {
    if (m.type === "applied") this.answerEarly(m.entries);
    const acknowledging = this.acknowledging;
    for (let i = 0; i < this.workers.length; i++) {
      if (m.type === "leases") {
        // They ride the frontend's next requests message: they only matter to requests.
        const queued = (this.leaseUpdates[i] ??= []);
        queued.push(...m.changes);
        if (queued.length >= LEASE_UPDATES_QUEUED_MAX) this.outboxes[i].ping();
      } else if (m.type === "applied") {
        const held = this.heldApplied[i];
        for (const e of entriesFor(i, this.size, this.frontendOfActor, m.entries)) held.push(e);
        if (acknowledging || this.awaiting[i] || held.length >= APPLIED_HELD_MAX) this.releaseApplied(i);
      } else {
        this.releaseApplied(i); // ordered after every entry before it
        this.post(i, m);
      }
    }
  }

  /**
   * Changes the internal replication factor until the server stops (see
   * InternalReplication.setFactor). Above 1, every frontend gets what it
   * holds back at once and acknowledges each entry as it applies it; back at
   * 1, entries are held again and acknowledgements ride responses.
   */
  setInternalReplication(k: number): void {
    this.backend.replication.setFactor(k);
    for (let i = 0; i < this.workers.length; i++) {
      this.releaseApplied(i);
      this.post(i, { type: "acknowledge", on: this.acknowledging });
    }
  }

  /** Each frontend's actor and the revision it last said it applied. */
  acknowledged(): { actor: string; revision: number }[] {
    const revs = this.backend.replication.acknowledged();
    return this.actors.map((actor, i) => ({ actor, revision: revs[i] }));
  }

  /** Whether anyone waits for frontends' acknowledgements (internal replication above 1). */
  private get acknowledging(): boolean {
    return this.backend.replication.factor > 1;
  }

  private releaseApplied(i: number): void {
    const held = this.heldApplied[i];
    if (held.length === 0) return;
    this.heldApplied[i] = [];
    this.post(i, { type: "applied", entries: held });
  }

  private onMessage(i: number, m: FromFrontend): void {
    switch (m.type) {
      case "envelopes":
        if (m.replies) for (const r of m.replies) this.earlyReplies[i].set(r.seq, r);
        this.backend.submit(m.items);
        this.setAwaiting(i, m.awaiting);
        return;
      case "fetch":
        this.post(i, { type: "buckets", id: m.id, loans: this.backend.lend(m.buckets) });
        return;
      case "responses":
        this.setAwaiting(i, m.awaiting);
        this.backend.replication.acknowledge(i, m.ack);
        for (const item of m.items) {
          if (item.ok) this.answer(item.id, i, { revision: item.revision, result: item.result });
          else this.take(item.id)?.reject(fromWireError(item.error));
        }
        return;
      case "fatal":
        this.fail(`frontend ${i} failed: ${m.message}`);
        return;
      case "ready":
        return;
    }
  }

  private setAwaiting(i: number, awaiting: boolean): void {
    this.awaiting[i] = awaiting;
    if (awaiting) this.releaseApplied(i);
  }

  /** Answers the writes whose results came with their changes, now that those changes are durable. */
  private answerEarly(entries: AppliedEntry[]): void {
    for (const e of entries) {
      const f = e.actor === undefined ? undefined : this.frontendOfActor.get(e.actor);
      if (f === undefined) continue;
      const reply = this.earlyReplies[f].get(e.seq!);
      if (!reply) continue;
      this.earlyReplies[f].delete(e.seq!);
      this.answer(reply.id, f, { revision: e.rev, result: reply.result });
    }
  }

  /** A write is answered once internally replicated (its executor counting), a read at once. */
  private answer(id: number, executor: number, done: Executed): void {
    const w = this.take(id);
    if (!w) return;
    if (!w.write) w.resolve(done);
    else this.backend.replication.whenReplicated(done.revision, executor).then(() => w.resolve(done));
  }

  /** Removes a request from those in flight. */
  private take(id: number): Waiting | undefined {
    const w = this.waiting.get(id);
    if (!w) return undefined;
    this.waiting.delete(id);
    return w;
  }

  private fail(message: string): void {
    if (this.stopping) return;
    for (const w of this.waiting.values()) w.reject(new MergekvError("Internal", message));
    this.waiting.clear();
    this.onFatal(message);
  }

  /** Executes a KV request on the frontend that routing picks. */
  execute(request: KvRequest): Promise<Executed> {
    if (this.stopping) return Promise.reject(new MergekvError("Unavailable"));
    const write = request.kind === "put" || request.kind === "deleteRange" || request.kind === "txn" || request.kind === "revokeKeys";
    const target = write ? ownerOf(bucketOf(routingKey(request)), this.size) : this.nextReader++ % this.size;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, write });
      this.outboxes[target].push({ id, minRev: this.backend.revision, request });
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The key that decides which frontend executes a write. */
export function routingKey(r: KvRequest): string {
  switch (r.kind) {
    case "put": return r.req.key;
    case "deleteRange": return r.req.key;
    case "range": return r.req.key;
    case "hashKV": return "";
    case "revokeKeys": return r.req.keys[0] ?? "";
    case "txn": {
      if (r.req.compare.length > 0) return r.req.compare[0].key;
      const op = r.req.success[0] ?? r.req.failure[0];
      if (!op) return "";
      if ("put" in op) return op.put.key;
      if ("deleteRange" in op) return op.deleteRange.key;
      if ("range" in op) return op.range.key;
      return routingKey({ kind: "txn", req: op.txn });
    }
  }
}
