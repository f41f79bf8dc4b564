/**
 * Shared pieces of the issue-3 phases (watch fan-out, lease churn, auth puts):
 * the etcd codecs of every service they call, a unary gRPC client on
 * node:http2 that can send metadata (the harness's H2Channel cannot), a
 * closed-loop runner for the lease and auth loops, a log-bucketed latency
 * histogram (the watch phase records millions of deliveries), and the knobs.
 */
import * as http2 from "node:http2";
import * as path from "node:path";
import * as protoLoader from "@grpc/proto-loader";
import * as grpc from "@grpc/grpc-js";
import { frame, settleUnary, GrpcStatus } from "./h2";
import { Msg } from "./wire";
import { cpuSeconds, MachineMeter } from "./processes";
import { summarize, LatencySummary } from "./stats";
import { REQUEST_TIMEOUT_MS } from "./clients";

const { NGHTTP2_CANCEL } = http2.constants;

type Codec = { requestSerialize: (m: Msg) => Buffer; responseDeserialize: (b: Buffer) => Msg };
type ServiceName = "KV" | "Watch" | "Lease" | "Auth";

let defs: Record<string, { service: grpc.ServiceDefinition }> | null = null;

/** The request/response codecs grpc-js would use for `Service/Method` (same loader options as bench/wire.ts). */
export function codec(service: ServiceName, method: string): Codec {
  if (!defs) {
    const dir = path.dirname(require.resolve("etcd3/proto/rpc.proto"));
    const def = protoLoader.loadSync(path.join(dir, "rpc.proto"), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [dir] });
    defs = (grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Record<string, { service: grpc.ServiceDefinition }> }).etcdserverpb;
  }
  return defs[service].service[method] as unknown as Codec;
}

/** One HTTP/2 connection for unary calls with optional metadata (e.g. an auth `token`), and raw streams. */
export class H2Conn {
  readonly session: http2.ClientHttp2Session;

  constructor(endpoint: string) {
    this.session = http2.connect(`http://${endpoint}`);
    this.session.on("error", () => undefined); // surfaced per call
  }

  /** A typed unary call: encodes `req`, decodes the response. */
  async call(service: ServiceName, method: string, req: Msg, metadata?: Record<string, string>): Promise<Msg> {
    const c = codec(service, method);
    return c.responseDeserialize(await this.unary(`/etcdserverpb.${service}/${method}`, c.requestSerialize(req), metadata));
  }

  unary(grpcPath: string, request: Uint8Array, metadata?: Record<string, string>): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.session.request({ ":method": "POST", ":path": grpcPath, "content-type": "application/grpc", te: "trailers", ...metadata });
      } catch (e) {
        reject(e);
        return;
      }
      const timer = setTimeout(() => stream.close(NGHTTP2_CANCEL), REQUEST_TIMEOUT_MS);
      const chunks: Buffer[] = [];
      const result = new GrpcStatus();
      const onHeaders = (h: http2.IncomingHttpHeaders) => result.read(h);
      stream.on("response", onHeaders);
      stream.on("trailers", onHeaders);
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("error", () => undefined);
      stream.on("close", () => {
        clearTimeout(timer);
        settleUnary(stream, result, chunks, resolve, reject);
      });
      stream.end(frame(request));
    });
  }

  close(): void {
    this.session.close();
  }
}

/** Now, on the clock every thread shares (ms since the epoch, sub-ms precision). */
export const now = (): number => performance.timeOrigin + performance.now();

/** What one closed-loop run reports. */
export interface LoopFigures extends LatencySummary {
  windowMs: number;
  errors: number;
  errorSamples: string[];
  serverCores: number;
  loadgenCores: number;
  /** CPU used by every other process on the machine during the run, in cores. */
  otherCores: number;
  /** CPU the hypervisor gave other guests while this VM had work (steal), cores. */
  stolenCores: number;
  /** Server and load-generator CPU per completed op, µs, over the whole run (warm-up included): cost, whatever the machine's speed. */
  serverUsPerOp: number;
  loadgenUsPerOp: number;
}

/**
 * `loops` concurrent loops each running `op` back to back for warm-up +
 * measured time; an op counts (throughput and latency) when it starts inside
 * the measured window, as in the harness. A loop stops at its first error
 * after ERRORS_MAX errors overall.
 */
export async function closedLoop(loops: number, warmupMs: number, durationMs: number, serverPid: number, op: (loop: number, seq: number) => Promise<void>): Promise<LoopFigures> {
  const ERRORS_MAX = 1_000;
  const t0 = now();
  const recordFrom = t0 + warmupMs;
  const deadline = recordFrom + durationMs;
  const starts: number[] = [];
  const lat: number[] = [];
  let errors = 0;
  let completed = 0;
  const errorSamples: string[] = [];
  const cpu0 = process.cpuUsage();
  const server0 = cpuSeconds(serverPid);
  const machine = new MachineMeter();
  const loop = async (i: number) => {
    for (let seq = 0; errors < ERRORS_MAX; seq++) {
      const s = now();
      if (s >= deadline) return;
      try {
        await op(i, seq);
        completed++;
        if (s >= recordFrom) {
          starts.push(s);
          lat.push(now() - s);
        }
      } catch (e) {
        errors++;
        if (errorSamples.length < 5) errorSamples.push((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: loops }, (_, i) => loop(i)));
  const wallS = (now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const serverS = cpuSeconds(serverPid) - server0;
  const loadgenS = (cpu.user + cpu.system) / 1e6;
  return {
    ...summarize(Float64Array.from(lat), durationMs),
    windowMs: durationMs,
    errors,
    errorSamples,
    serverCores: serverS / wallS,
    loadgenCores: loadgenS / wallS,
    ...machine.cores(serverS + loadgenS, wallS),
    serverUsPerOp: (serverS * 1e6) / completed,
    loadgenUsPerOp: (loadgenS * 1e6) / completed,
  };
}

/** Log-bucketed latency histogram: 1% wide buckets from 1 µs to ~7 minutes, mergeable across threads. */
export const HIST_BUCKETS = 2_200;
const HIST_BASE_MS = 0.001;
const HIST_LOG_STEP = Math.log(1.01);

export function histIndex(ms: number): number {
  if (!(ms > HIST_BASE_MS)) return 0;
  return Math.min(HIST_BUCKETS - 1, 1 + Math.floor(Math.log(ms / HIST_BASE_MS) / HIST_LOG_STEP));
}

/** Upper edge of bucket i, in ms. */
export function histUpper(i: number): number {
  return HIST_BASE_MS * Math.pow(1.01, i);
}

export function histPercentile(counts: Float64Array, q: number): number {
  let total = 0;
  for (const c of counts) total += c;
  if (total === 0) return NaN;
  const rank = Math.ceil((q / 100) * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= rank) return histUpper(i);
  }
  return histUpper(counts.length - 1);
}

export function histMerge(into: Float64Array, from: Float64Array): void {
  for (let i = 0; i < into.length; i++) into[i] += from[i];
}

function knob(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  return n;
}

/** The issue-3 phases' own knobs (the harness's BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_THREADS, BENCH_VALUE_BYTES apply too). */
export function issue3Knobs() {
  return {
    watchers: knob("BENCH_WATCHERS", 1_000, 1, 100_000),
    watchStreams: knob("BENCH_WATCH_STREAMS", 10, 1, 1_000),
    leaseLoops: knob("BENCH_LEASE_LOOPS", 16, 1, 4_096),
    authClients: knob("BENCH_AUTH_CLIENTS", 64, 1, 4_096),
    authKeys: knob("BENCH_AUTH_KEYS", 10_000, 1, 1_000_000),
    /** The catch-up phase: keys in the watched range, and the revisions (outside it) the watch starts behind. */
    catchUpKeys: knob("BENCH_CATCHUP_KEYS", 100_000, 1, 10_000_000),
    catchUpRevisions: knob("BENCH_CATCHUP_REVISIONS", 50_000, 1, 10_000_000),
    /** The bulk-delete phase: keys under the prefix one DeleteRange removes. */
    bulkDeleteKeys: knob("BENCH_BULK_DELETE_KEYS", 9_000, 1, 1_000_000),
    /**
     * Unmeasured load before a phase's first run on each server (its own
     * workload). mergekv is JIT-compiled: under the watch fan-out its V8
     * compiler threads took 150 ticks per 5 s in the first 5 s, 45 at 15 s,
     * 15 at 40 s (docs/benchmarks.md, "Session 8"); etcd gets the same.
     */
    warmupSeconds: knob("BENCH_ISSUE3_WARMUP_SECONDS", 20, 0, 600),
    /** Runs of each target phase per server, alternating etcd and mergekv; the median run of each is reported. */
    rounds: knob("BENCH_ISSUE3_ROUNDS", 3, 1, 20),
    /**
     * A run during which the hypervisor took more than this much CPU from
     * the machine (steal, in hundredths of a core) is run again, up to
     * `stealRetries` times; every attempt is printed. In one session-9 run,
     * steal took 0.05-0.93 cores from one round to the next.
     */
    stealMaxCentiCores: knob("BENCH_ISSUE3_STEAL_MAX", 30, 0, 200),
    stealRetries: knob("BENCH_ISSUE3_STEAL_RETRIES", 2, 0, 10),
  };
}
export type Issue3Knobs = ReturnType<typeof issue3Knobs>;

/** Two figures side by side, as the tables print them. */
export const fmt = (n: number | undefined, digits = 0): string => (n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));
