/**
 * Watch fan-out: one writer puts to a key prefix, one value at a time (the
 * next put is sent when the previous one is acknowledged); BENCH_WATCHERS
 * watches on that prefix (default 1,000), spread over BENCH_WATCH_STREAMS
 * Watch streams (default 10, one HTTP/2 connection each) and over the load
 * threads. Reports delivered events/s across all watchers (events received
 * inside the measured window) and the delivery latency from the writer seeing
 * its put acknowledged to a watcher receiving the event (p50/p99 over every
 * delivery of every put sent in the window), plus the same from the put's
 * send time, which is carried in the value.
 */
import { Worker } from "node:worker_threads";
import * as path from "node:path";
import { BenchConfig } from "./config";
import { ServerHandle } from "./servers";
import { cpuSeconds, MachineMeter } from "./processes";
import { log } from "./common";
import { codec, H2Conn, histMerge, histPercentile, HIST_BUCKETS, Issue3Knobs, now } from "./issue3-common";
import { WatchFromMain, WatchThreadResult, WatchThreadSpec, WatchToMain } from "./watch-worker";

const WORKER = path.join(__dirname, "watch-worker.js");
/** Puts one run may issue at most (sizes the shared ack array: 8 bytes each). */
const PUTS_MAX = 4_000_000;
const PREFIX = "bench-watch/";
/** Distinct keys the writer cycles through under the prefix. */
const KEYS = 64;
const CREATE_TIMEOUT_MS = 60_000;
/** After the writer stops, deliveries are awaited until all arrived, none came for this long, or DRAIN_MAX_MS. */
const DRAIN_IDLE_MS = 1_000;
const DRAIN_MAX_MS = 15_000;

export interface WatchRun {
  system: string;
  watchers: number;
  streams: number;
  threads: number;
  windowMs: number;
  eventsPerSec: number;
  /** Writer: puts acknowledged per second in the window, and its put latency. */
  putsPerSec: number;
  putP50Ms: number;
  putP99Ms: number;
  /** Write acknowledged -> event received. */
  p50Ms: number;
  p99Ms: number;
  /** Put sent (timestamp in the value) -> event received. */
  sendP50Ms: number;
  sendP99Ms: number;
  /** Deliveries that arrived before the put's acknowledgement (counted as 0 ms), share of measured. */
  earlyShare: number;
  /** Deliveries expected by the end of the drain (every put x every watcher) that never came. */
  missingEvents: number;
  drainMs: number;
  writerErrors: number;
  streamErrors: string[];
  serverCores: number;
  loadgenCores: number;
  otherCores: number;
  stolenCores: number;
  /** Server and load-generator (writer and watchers) CPU per put acknowledged, µs, over the writer's whole run. */
  serverUsPerPut: number;
  loadgenUsPerPut: number;
}

interface Thread {
  worker: Worker;
  ready: Promise<void>;
  done: Promise<WatchThreadResult>;
}

function startThread(spec: WatchThreadSpec): Thread {
  const worker = new Worker(WORKER, { workerData: spec });
  let readyResolve!: () => void;
  let fail!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => { readyResolve = resolve; fail = reject; });
  const done = new Promise<WatchThreadResult>((resolve, reject) => {
    worker.on("message", (m: WatchToMain) => {
      if (m.type === "ready") readyResolve();
      else if (m.type === "done") resolve(m.result);
      else { const e = new Error(`watch thread failed: ${m.message}`); fail(e); reject(e); }
    });
    worker.on("error", (e: Error) => { fail(e); reject(e); });
    worker.on("exit", (code) => { const e = new Error(`watch thread exited with code ${code}`); fail(e); reject(e); });
  });
  done.catch(() => undefined);
  ready.catch(() => undefined);
  return { worker, ready, done };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function split(total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0);
}

export async function runWatch(cfg: BenchConfig, knobs: Issue3Knobs, server: ServerHandle): Promise<WatchRun> {
  const streams = Math.min(knobs.watchStreams, knobs.watchers);
  const threads = Math.max(1, Math.min(cfg.threads, streams));
  const perStream = Math.ceil(knobs.watchers / streams);
  const watchers = perStream * streams;
  const acksBuf = new SharedArrayBuffer(8 * PUTS_MAX);
  const acks = new Float64Array(acksBuf);
  const progressBuf = new SharedArrayBuffer(8 * threads);
  const progress = new Float64Array(progressBuf);
  const rangeEnd = PREFIX.slice(0, -1) + String.fromCharCode(PREFIX.charCodeAt(PREFIX.length - 1) + 1);
  const pool: Thread[] = [];
  const writer = new H2Conn(server.endpoint);
  try {
    for (let t = 0; t < threads; t++) {
      pool.push(startThread({ endpoint: server.endpoint, streams: split(streams, threads, t), watchesPerStream: perStream, prefix: PREFIX, rangeEnd, acks: acksBuf, progress: progressBuf, thread: t }));
    }
    const createStarted = now();
    await Promise.race([
      Promise.all(pool.map((p) => p.ready)),
      sleep(CREATE_TIMEOUT_MS).then(() => { throw new Error(`${server.system}: ${watchers} watches not created within ${CREATE_TIMEOUT_MS} ms`); }),
    ]);
    log(`  ${server.system}: ${watchers} watches on ${streams} streams over ${threads} threads created in ${(now() - createStarted).toFixed(0)} ms`);

    const put = codec("KV", "Put");
    const value = Buffer.alloc(Math.max(12, cfg.valueBytes), 0x61);
    const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(`${PREFIX}${String(i).padStart(4, "0")}`));
    const t0 = now();
    const recordFrom = t0 + cfg.warmupSeconds * 1000;
    const deadline = recordFrom + cfg.seconds * 1000;
    for (const p of pool) p.worker.postMessage({ type: "go", recordFrom, deadline } satisfies WatchFromMain);
    const cpu0 = process.cpuUsage();
    const server0 = cpuSeconds(server.proc.pid);
    const machine = new MachineMeter();
    const putLat: number[] = [];
    let seq = 0;
    let writerErrors = 0;
    let lastError = "";
    while (seq < PUTS_MAX && writerErrors < 100) {
      const sent = now();
      if (sent >= deadline) break;
      value.writeUInt32LE(seq, 0);
      value.writeDoubleLE(sent, 4);
      try {
        await writer.unary("/etcdserverpb.KV/Put", put.requestSerialize({ key: keys[seq % KEYS], value }));
        const acked = now();
        acks[seq] = acked;
        if (sent >= recordFrom) putLat.push(acked - sent);
        seq++;
      } catch (e) {
        writerErrors++;
        lastError = (e as Error).message;
      }
    }
    const wallS = (now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const serverS = cpuSeconds(server.proc.pid) - server0;
    const loadgenS = (cpu.user + cpu.system) / 1e6;
    const noise = machine.cores(serverS + loadgenS, wallS); // over the writer's run, as the figures above (not the drain)
    if (writerErrors) log(`  ${server.system}: writer errors ${writerErrors}, last: ${lastError}`);

    // Drain: wait for the deliveries still in flight.
    const expected = seq * watchers;
    const drainStart = now();
    let last = -1;
    let lastChange = drainStart;
    for (;;) {
      const got = progress.reduce((a, b) => a + b, 0);
      if (got !== last) { last = got; lastChange = now(); }
      if (got >= expected || now() - lastChange > DRAIN_IDLE_MS || now() - drainStart > DRAIN_MAX_MS) break;
      await sleep(50);
    }
    const drainMs = now() - drainStart;
    for (const p of pool) p.worker.postMessage({ type: "stop" } satisfies WatchFromMain);
    const results = await Promise.all(pool.map((p) => p.done));
    const ackHist = new Float64Array(HIST_BUCKETS);
    const sendHist = new Float64Array(HIST_BUCKETS);
    for (const r of results) { histMerge(ackHist, r.ackHist); histMerge(sendHist, r.sendHist); }
    const sum = (f: (r: WatchThreadResult) => number) => results.reduce((n, r) => n + f(r), 0);
    const measured = sum((r) => r.measuredEvents);
    const putSorted = Float64Array.from(putLat).sort();
    const pct = (q: number) => (putSorted.length ? putSorted[Math.min(putSorted.length - 1, Math.ceil((q / 100) * putSorted.length) - 1)] : NaN);
    return {
      system: server.system,
      watchers,
      streams,
      threads,
      windowMs: cfg.seconds * 1000,
      eventsPerSec: sum((r) => r.windowEvents) / cfg.seconds,
      putsPerSec: putLat.length / cfg.seconds,
      putP50Ms: pct(50),
      putP99Ms: pct(99),
      p50Ms: histPercentile(ackHist, 50),
      p99Ms: histPercentile(ackHist, 99),
      sendP50Ms: histPercentile(sendHist, 50),
      sendP99Ms: histPercentile(sendHist, 99),
      earlyShare: measured ? sum((r) => r.early) / measured : NaN,
      missingEvents: Math.max(0, expected - sum((r) => r.totalEvents)),
      drainMs,
      writerErrors,
      streamErrors: results.flatMap((r) => r.streamErrors).slice(0, 5),
      serverCores: serverS / wallS,
      loadgenCores: loadgenS / wallS,
      ...noise,
      serverUsPerPut: (serverS * 1e6) / seq,
      loadgenUsPerPut: (loadgenS * 1e6) / seq,
    };
  } finally {
    writer.close();
    await Promise.all(pool.map((p) => p.worker.terminate()));
  }
}
