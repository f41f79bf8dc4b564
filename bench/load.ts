/**
 * Runs one workload against one server: spreads the request loops over
 * worker threads (one Node event loop is not the limit), starts them
 * together, and merges what they recorded.
 */
import { Worker } from "node:worker_threads";
import * as path from "node:path";
import { ClientKind } from "./config";
import { REQUEST_TIMEOUT_MS } from "./clients";
import { cpuSeconds, MachineMeter } from "./processes";
import { LatencySummary, concat, summarize } from "./stats";
import { FromWorker, Go, ThreadResult, ThreadSpec, Workload } from "./workload";

const WORKER = path.join(__dirname, "load-worker.js");
/** Samples a thread records at most: a bound on memory (16 bytes each). */
const SAMPLES_PER_THREAD_MAX = 4_000_000;
/** Far above what one Node thread can drive over gRPC: sizes the sample buffers. */
const OPS_PER_THREAD_SECOND_MAX = 100_000;
/** Threads get this long to connect before the run fails. */
const CONNECT_TIMEOUT_MS = 30_000;

export interface LoadOptions {
  workload: Workload;
  endpoint: string;
  client: ClientKind;
  /** Total request loops. */
  clients: number;
  threads: number;
  keyspace: number;
  valueBytes: number;
  warmupMs: number;
  /** Measured time; for fill, the most it may take. */
  durationMs: number;
  fill?: { from: number; to: number; batch: number };
  /** The server's pid, to report the CPU it used during the run. */
  serverPid?: number;
  /** Runs alongside the load once it has started (e.g. an online compaction); awaited with it. */
  alongside?: (go: Go, control: LoadControl) => Promise<unknown>;
}

/** What a side task sees of the running load. */
export interface LoadControl {
  /** Every thread has finished. */
  readonly done: boolean;
  /** Tells every thread to stop issuing requests. */
  stop(): void;
}

export interface LoadResult extends LatencySummary {
  workload: Workload;
  windowMs: number;
  completed: number;
  keysWritten: number;
  casSucceeded: number;
  casFailed: number;
  errors: Record<string, number>;
  errorSamples: string[];
  /** CPU seconds per second of wall time (1.0 = one core busy). */
  serverCores?: number;
  loadgenCores: number;
  /** CPU the rest of the machine (other processes: noise) used during the run, in cores. */
  otherCores?: number;
  /** CPU the hypervisor gave other guests while this VM had work (steal), in cores. */
  stolenCores?: number;
  /** Raw samples, for windowed analysis; not serialized. */
  starts: Float64Array;
  latencies: Float64Array;
}

function split(total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0);
}

function threadSpecs(o: LoadOptions): ThreadSpec[] {
  const threads = Math.max(1, Math.min(o.threads, o.clients));
  const seconds = (o.warmupMs + o.durationMs) / 1000;
  const specs: ThreadSpec[] = [];
  let fillAt = o.fill?.from ?? 0;
  for (let t = 0; t < threads; t++) {
    const fillCount = o.fill ? split(o.fill.to - o.fill.from, threads, t) : 0;
    specs.push({
      workload: o.workload,
      endpoint: o.endpoint,
      client: o.client,
      loops: split(o.clients, threads, t),
      channels: 1,
      keyspace: o.keyspace,
      valueBytes: o.valueBytes,
      fillFrom: fillAt,
      fillTo: fillAt + fillCount,
      fillBatch: o.fill?.batch ?? 1,
      samplesMax: Math.min(SAMPLES_PER_THREAD_MAX, o.fill ? fillCount : Math.ceil(OPS_PER_THREAD_SECOND_MAX * seconds)),
      seed: 0x5eed + t,
    });
    fillAt += fillCount;
  }
  return specs;
}

/** Starts a worker and resolves once its channels are open. */
function startThread(spec: ThreadSpec): { worker: Worker; ready: Promise<void>; done: Promise<ThreadResult> } {
  const worker = new Worker(WORKER, { workerData: spec });
  let readyResolve!: () => void;
  let fail!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    readyResolve = resolve;
    fail = reject;
  });
  const done = new Promise<ThreadResult>((resolve, reject) => {
    worker.on("message", (m: FromWorker) => {
      if (m.type === "ready") readyResolve();
      else if (m.type === "done") resolve(m.result);
      else {
        const e = new Error(`load thread failed: ${m.message}`);
        fail(e);
        reject(e);
      }
    });
    worker.on("error", (e: Error) => { fail(e); reject(e); });
    worker.on("exit", (code) => { const e = new Error(`load thread exited with code ${code}`); fail(e); reject(e); });
  });
  done.catch(() => undefined); // observed through Promise.all below
  return { worker, ready, done };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]);
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const threads = threadSpecs(o).map(startThread);
  try {
    await withTimeout(Promise.all(threads.map((t) => t.ready)), CONNECT_TIMEOUT_MS, `connecting to ${o.endpoint}`);
    const t0 = performance.timeOrigin + performance.now();
    const go: Go = { type: "go", recordFromMs: t0 + o.warmupMs, deadlineMs: t0 + o.warmupMs + o.durationMs };
    const cpu0 = process.cpuUsage();
    const server0 = o.serverPid ? cpuSeconds(o.serverPid) : 0;
    const machine = new MachineMeter();
    for (const t of threads) t.worker.postMessage(go);
    let sideError: unknown = null;
    const control = { done: false, stop: () => { for (const t of threads) t.worker.postMessage({ type: "stop" }); } };
    const side = o.alongside?.(go, control).catch((e) => { sideError = e ?? new Error("alongside failed"); });
    const results = await withTimeout(Promise.all(threads.map((t) => t.done)), o.warmupMs + o.durationMs + REQUEST_TIMEOUT_MS + 30_000, `${o.workload} load`);
    control.done = true;
    const wallS = (performance.timeOrigin + performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const server = o.serverPid ? cpuSeconds(o.serverPid) - server0 : undefined;
    const loadgenS = (cpu.user + cpu.system) / 1e6;
    const noise = machine.cores(loadgenS + (server ?? 0), wallS);
    await side;
    if (sideError) throw sideError;
    return { ...merge(o, results, go, wallS, loadgenS, server), ...noise };
  } finally {
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }
}

function merge(o: LoadOptions, results: ThreadResult[], go: Go, wallS: number, loadgenCpuS: number, serverCpuS: number | undefined): LoadResult {
  const starts = concat(results.map((r) => r.starts));
  const latencies = concat(results.map((r) => r.latencies));
  const errors: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const fill = o.workload === "fill";
  // A fill runs until done: its window is its wall time, not the deadline.
  const windowMs = fill ? wallS * 1000 : go.deadlineMs - go.recordFromMs;
  return {
    workload: o.workload,
    ...summarize(latencies, windowMs),
    windowMs,
    completed: results.reduce((n, r) => n + r.completed, 0),
    keysWritten: results.reduce((n, r) => n + r.keysWritten, 0),
    casSucceeded: results.reduce((n, r) => n + r.casSucceeded, 0),
    casFailed: results.reduce((n, r) => n + r.casFailed, 0),
    errors,
    errorSamples: results.flatMap((r) => r.errorSamples).slice(0, 5),
    serverCores: serverCpuS === undefined ? undefined : serverCpuS / wallS,
    loadgenCores: loadgenCpuS / wallS,
    starts,
    latencies,
  };
}

/** Total errors of a run. */
export function errorTotal(r: LoadResult): number {
  return Object.values(r.errors).reduce((n, v) => n + v, 0);
}
