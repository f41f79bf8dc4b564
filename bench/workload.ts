/**
 * What one load thread is told to do, and what it reports back. Shared by the
 * runner (main thread) and the load worker.
 */
import { ClientKind } from "./config";

export type Workload =
  /** put of a random key in the keyspace */
  | "put"
  /** serializable get of a random key */
  | "get"
  /** compare-and-swap: linearizable get of the key's mod revision, then Txn(mod == it ? put) */
  | "cas"
  /** bulk load: every key in [fillFrom, fillTo) once, in Txn batches of fillBatch puts */
  | "fill";

export interface ThreadSpec {
  workload: Workload;
  endpoint: string;
  client: ClientKind;
  /** Request loops in this thread. */
  loops: number;
  /** gRPC channels in this thread (loops share them round-robin). */
  channels: number;
  keyspace: number;
  valueBytes: number;
  /** fill: this thread's key range and batch size. */
  fillFrom: number;
  fillTo: number;
  fillBatch: number;
  /** Samples recorded at most by this thread (a bound on memory). */
  samplesMax: number;
  seed: number;
}

/** Main -> worker after "ready": absolute times (performance.timeOrigin + now), ms. */
export interface Go {
  type: "go";
  /** Samples that start before this are warm-up, not recorded. */
  recordFromMs: number;
  /** No new request starts at or after this. */
  deadlineMs: number;
}

/** Main -> worker: stop issuing requests now (in-flight ones complete). */
export interface Stop {
  type: "stop";
}

export interface ThreadResult {
  /** Absolute start time of each recorded op, ms. */
  starts: Float64Array;
  /** Latency of each recorded op, ms (same order as `starts`). */
  latencies: Float64Array;
  /** Ops completed (recorded or not), including fill ops. */
  completed: number;
  /** Keys written by fill. */
  keysWritten: number;
  casSucceeded: number;
  casFailed: number;
  errors: Record<string, number>;
  /** The first few error messages, for the log. */
  errorSamples: string[];
}

export type FromWorker = { type: "ready" } | { type: "done"; result: ThreadResult } | { type: "failed"; message: string };

/** Key i of the benchmark keyspace: fixed width so keys sort like their index. */
export function keyOf(i: number): Buffer {
  return Buffer.from(`bench/key/${String(i).padStart(10, "0")}`);
}

/** A small deterministic PRNG (mulberry32): the load is reproducible from its seed and costs nothing. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
