/**
 * The benchmark's settings: every knob is an environment variable with a
 * default and a bound, read once at start-up.
 */
import * as os from "node:os";

/** Which client library drives the load (both speak to both servers). */
export type ClientKind = "h2" | "raw" | "etcd3";

export interface BenchConfig {
  /** Measured seconds per workload run. */
  seconds: number;
  /** Seconds of load before measuring starts (ops run but are not recorded). */
  warmupSeconds: number;
  /** Rounds of the core comparison; medians are taken across them. */
  rounds: number;
  /** Concurrent request loops (etcd's "clients"), spread over the load threads. */
  clients: number;
  /** Worker threads generating load (each with its own gRPC channel). */
  threads: number;
  keyspace: number;
  valueBytes: number;
  client: ClientKind;
  /** Phases to run, in order. */
  phases: Set<Phase>;
  /** Also run the 1M-key scale step (takes several minutes). */
  million: boolean;
  /** Keys at the small scale step. */
  scaleKeys: number;
  /** Keys at the large scale step (only with `million`). */
  millionKeys: number;
  /** Concurrent puts while bulk loading. */
  fillClients: number;
  /** Puts per request while bulk loading the scale steps: 1 = plain puts; more = one Txn of that many puts (at most 128). */
  fillBatch: number;
  /** Bulk load with --unsafe-no-fsync (the restart is measured with fsync on, same data dir). */
  fillNoFsync: boolean;
  /** A bulk load stops after this long (the step then reports the keys it reached). */
  fillMinutes: number;
  /** A bulk load stops when the server's RSS passes this (protects the shared machine). */
  rssAbortBytes: number;
  /** How long a (re)start may take before the run fails. */
  startTimeoutMs: number;
  /** Extra flags for the mergekv server (e.g. "--frontends 1"). */
  mergekvArgs: string[];
  /** Where the JSON results go. */
  resultsPath: string;
}

export type Phase = "ceiling" | "core" | "scale" | "compaction";
const ALL_PHASES: Phase[] = ["ceiling", "core", "scale", "compaction"];

/** Upper bounds that keep a mistyped variable from running for hours. */
const SECONDS_MAX = 600;
const ROUNDS_MAX = 20;
const CLIENTS_MAX = 4_096;
const THREADS_MAX = 16;
const KEYS_MAX = 5_000_000;
const VALUE_BYTES_MAX = 1024 * 1024;

function num(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  return n;
}

function int(name: string, fallback: number, min: number, max: number): number {
  const n = num(name, fallback, min, max);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${n}`);
  return n;
}

function flag(name: string, fallback: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  return raw === "1" || raw.toLowerCase() === "true" || raw.toLowerCase() === "yes";
}

function phases(): Set<Phase> {
  const raw = process.env.BENCH_PHASES;
  if (!raw) return new Set(ALL_PHASES);
  const out = new Set<Phase>();
  for (const p of raw.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!ALL_PHASES.includes(p as Phase)) throw new Error(`BENCH_PHASES: unknown phase ${JSON.stringify(p)} (known: ${ALL_PHASES.join(", ")})`);
    out.add(p as Phase);
  }
  return out;
}

export function readConfig(defaultResultsPath: string): BenchConfig {
  const client = (process.env.BENCH_CLIENT || "h2") as ClientKind;
  if (!["h2", "raw", "etcd3"].includes(client)) throw new Error(`BENCH_CLIENT must be h2, raw or etcd3, got ${JSON.stringify(client)}`);
  const clients = int("BENCH_CLIENTS", 64, 1, CLIENTS_MAX);
  return {
    seconds: num("BENCH_SECONDS", 10, 1, SECONDS_MAX),
    warmupSeconds: num("BENCH_WARMUP_SECONDS", 1, 0, SECONDS_MAX),
    rounds: int("BENCH_ROUNDS", 3, 1, ROUNDS_MAX),
    clients,
    threads: Math.min(clients, int("BENCH_THREADS", Math.min(2, os.availableParallelism()), 1, THREADS_MAX)),
    keyspace: int("BENCH_KEYS", 10_000, 1, KEYS_MAX),
    valueBytes: int("BENCH_VALUE_BYTES", 256, 1, VALUE_BYTES_MAX),
    client,
    phases: phases(),
    million: flag("BENCH_MILLION", false),
    scaleKeys: int("BENCH_SCALE_KEYS", 100_000, 1, KEYS_MAX),
    millionKeys: int("BENCH_MILLION_KEYS", 1_000_000, 1, KEYS_MAX),
    fillClients: int("BENCH_FILL_CLIENTS", 256, 1, CLIENTS_MAX),
    fillBatch: int("BENCH_FILL_BATCH", 1, 1, 128),
    fillNoFsync: flag("BENCH_FILL_NO_FSYNC", true),
    fillMinutes: num("BENCH_FILL_MINUTES", 60, 0.1, 24 * 60),
    rssAbortBytes: num("BENCH_RSS_ABORT_GIB", 12, 0.1, 1024) * 1024 ** 3,
    startTimeoutMs: num("BENCH_START_MINUTES", 30, 0.1, 24 * 60) * 60_000,
    mergekvArgs: (process.env.BENCH_MERGEKV_ARGS ?? "").split(/\s+/).filter(Boolean),
    resultsPath: process.env.BENCH_RESULTS || defaultResultsPath,
  };
}
