/**
 * A frontend's warm-up, before it says it is ready: a few hundred requests
 * through its own request path, on scratch replicas that nothing else sees.
 *
 * Why: V8 compiles a thread's JavaScript and Automerge's WebAssembly as they
 * are first used. A fresh frontend's first put took about 60 ms and the next
 * hundred 4-8 ms each (2 ms warm), so the first burst of clients queued:
 * with `etcdctl check perf --load m` (200 clients, 1,000 puts/s) the first
 * puts took 480-650 ms and the check failed on its 500 ms bound, where etcd's
 * slowest took 13 ms (docs/benchmarks.md, "Session 12").
 *
 * The scratch replicas own every bucket, under actors of their own, and are
 * freed at the end: the frontend's real replica, the backend and the data
 * directory never see any of it.
 */
import { randomBytes } from "node:crypto";
import { Replica, AppliedEntry } from "../backend/replica";
import { Envelope, nextTurn } from "../backend/backend";
import { ActorId, KeyString } from "../persist/encoding";
import { Executor } from "./executor";
import { DeleteRangeResult, KvRequest, putOf, rangeOf } from "./requests";
import { assert } from "../errors";

/** Rounds of writes (each: a put to every key, reads, a Txn, a delete); enough for V8 to optimize the hot paths. */
export const WARM_UP_ROUNDS = 3;
/** Keys written per round, each in its own bucket mostly: new documents, then overwrites. */
export const WARM_UP_KEYS = 128;
/** The warm-up stops after the round that passes this, however many rounds are left (it delays every start). */
export const WARM_UP_BUDGET_MS = 600;
const VALUE = new Uint8Array(256).fill(0x77);

export interface WarmUpReport {
  requests: number;
  ms: number;
}

const scratchActor = () => randomBytes(16).toString("hex") as ActorId;

/**
 * A replica whose writes a scratch backend applies a turn later, and a second
 * replica that applies the same entries as a remote one (another frontend's
 * path for changes it did not make).
 */
class ScratchBackend {
  readonly executor: Executor;
  readonly follower = new Replica(scratchActor());
  private rev = 0;
  private queued: Envelope[] = [];

  constructor() {
    this.executor = new Executor(new Replica(scratchActor()), (e) => this.receive(e), async () => {
      throw new Error("a scratch replica owns every bucket and never borrows");
    });
  }

  private receive(e: Envelope): void {
    this.queued.push(e);
    if (this.queued.length > 1) return;
    setImmediate(() => {
      const entries: AppliedEntry[] = this.queued.splice(0).map((q) => ({ rev: ++this.rev, actor: q.actor, seq: q.seq, changes: q.changes, writes: q.writes }));
      this.follower.apply(entries);
      this.executor.onApplied(entries);
    });
  }

  free(): void {
    this.executor.replica.buckets.free();
    this.follower.buckets.free();
  }
}

const put = (key: KeyString, prevKv: boolean): KvRequest => ({ kind: "put", req: putOf(key, VALUE, { prevKv }) });

/** One round's steps, each a batch of requests run at once: new keys (or overwrites), overwrites with prev_kv, reads, a Txn, a prefix delete. */
function round(n: number): KvRequest[][] {
  const prefix = `warm-up/${n % 2}/` as KeyString;
  const prefixEnd = `warm-up/${n % 2}0` as KeyString;
  const keys = Array.from({ length: WARM_UP_KEYS }, (_, i) => `${prefix}${String(i).padStart(4, "0")}` as KeyString);
  const txn: KvRequest = {
    kind: "txn",
    req: {
      compare: [{ key: keys[0], rangeEnd: "" as KeyString, target: "VERSION", result: "GREATER", number: 0, value: new Uint8Array(0) }],
      success: [{ put: putOf(keys[1], VALUE) }, { range: rangeOf(keys[2]) }],
      failure: [],
    },
  };
  return [
    keys.map((k) => put(k, false)),
    keys.map((k, i) => put(k, i % 2 === 0)),
    [...keys.slice(0, 32).map((k): KvRequest => ({ kind: "range", req: rangeOf(k) })), { kind: "range", req: rangeOf(prefix, { rangeEnd: prefixEnd }) }],
    [txn],
    [{ kind: "deleteRange", req: { key: prefix, rangeEnd: prefixEnd, prevKv: false } }],
  ];
}

/** Runs the warm-up; resolves with what it did. It fails only if the request path itself does, which serving would too. */
export async function warmUp(): Promise<WarmUpReport> {
  const started = performance.now();
  const scratch = new ScratchBackend();
  let requests = 0;
  try {
    for (let n = 0; n < WARM_UP_ROUNDS && performance.now() - started < WARM_UP_BUDGET_MS; n++) {
      const steps = round(n);
      for (const step of steps) {
        const results = await Promise.all(step.map((r) => scratch.executor.execute(r, 0)));
        requests += step.length;
        if (step === steps[steps.length - 1]) {
          // The prefix delete saw every key the round wrote: the scratch path worked as a real one does.
          assert((results[0].result as DeleteRangeResult).deleted === WARM_UP_KEYS, "the warm-up's delete found its keys");
        }
      }
      await nextTurn();
    }
  } finally {
    scratch.free();
  }
  return { requests, ms: performance.now() - started };
}
