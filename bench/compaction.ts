/**
 * Put latency while an online storage compaction runs (Maintenance.Defragment,
 * mergekv's trigger) against the same load without one, on a loaded server.
 */
import { BenchConfig } from "./config";
import { describe } from "./core";
import { LoadResult, runLoad } from "./load";
import { ServerHandle } from "./servers";
import { latenciesWithin, median, summarize } from "./stats";
import { call, rawMaintenance } from "./wire";
import { Go } from "./workload";
import { figures, log, RunFigures } from "./common";

/** One compaction of a big store may take minutes; past this it counts as hung. */
const DEFRAG_TIMEOUT_MS = 10 * 60 * 1000;
/** Compactions issued back to back in one measured run at most. */
const DEFRAGS_PER_RUN_MAX = 50;
/** Baseline / during pairs. */
const COMPACTION_ROUNDS = 2;

export interface CompactionRound {
  baseline: RunFigures;
  /** The whole run that had compactions going. */
  during: RunFigures;
  /** Each compaction's duration, ms. */
  defragMs: number[];
  /** Ops that started while a compaction ran, and their p99. */
  windowOps: number;
  windowP99Ms: number;
  /** The same, for the first compaction only (the one that covers the most). */
  firstWindowOps: number;
  firstWindowP99Ms: number;
}

export interface CompactionResult {
  keys: number;
  rounds: CompactionRound[];
  baselineP99Ms: number;
  duringP99Ms: number;
  /** median(window p99) / median(baseline p99). */
  ratio: number;
}

export async function runCompaction(cfg: BenchConfig, server: ServerHandle, keys: number): Promise<CompactionResult> {
  const rounds: CompactionRound[] = [];
  for (let i = 1; i <= COMPACTION_ROUNDS; i++) {
    // Alternate the order so that a trend (a server still warming up after its restart) favours neither side.
    const windows: [number, number][] = [];
    const runBaseline = async () => {
      const r = await putLoad(cfg, server, keys);
      log(`compaction round ${i}: baseline ${describe(r)}`);
      return r;
    };
    const runDuring = () => putLoad(cfg, server, keys, (go) => defragLoop(server.endpoint, go, windows));
    let baseline: LoadResult;
    let during: LoadResult;
    if (i % 2 === 1) {
      baseline = await runBaseline();
      during = await runDuring();
    } else {
      during = await runDuring();
      baseline = await runBaseline();
    }
    const inWindow = summarize(latenciesWithin(during.starts, during.latencies, windows), 0);
    const first = summarize(latenciesWithin(during.starts, during.latencies, windows.slice(0, 1)), 0);
    const defragMs = windows.map(([a, b]) => b - a);
    log(`compaction round ${i}: during   ${describe(during)}; ${windows.length} compactions (${defragMs.map((ms) => ms.toFixed(0)).join(", ")} ms), ` +
      `${inWindow.ops} ops inside them, p99 ${inWindow.p99Ms.toFixed(2)} ms (first: ${first.ops} ops, p99 ${first.p99Ms.toFixed(2)} ms)`);
    rounds.push({
      baseline: figures(baseline),
      during: figures(during),
      defragMs,
      windowOps: inWindow.ops,
      windowP99Ms: inWindow.p99Ms,
      firstWindowOps: first.ops,
      firstWindowP99Ms: first.p99Ms,
    });
  }
  const baselineP99Ms = median(rounds.map((r) => r.baseline.p99Ms));
  const duringP99Ms = median(rounds.map((r) => r.windowP99Ms));
  return { keys, rounds, baselineP99Ms, duringP99Ms, ratio: duringP99Ms / baselineP99Ms };
}

function putLoad(cfg: BenchConfig, server: ServerHandle, keys: number, alongside?: (go: Go) => Promise<unknown>): Promise<LoadResult> {
  return runLoad({
    workload: "put",
    endpoint: server.endpoint,
    client: cfg.client,
    clients: cfg.clients,
    threads: cfg.threads,
    keyspace: keys,
    valueBytes: cfg.valueBytes,
    warmupMs: cfg.warmupSeconds * 1000,
    durationMs: cfg.seconds * 1000,
    serverPid: server.proc.pid,
    alongside,
  });
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** From the end of the warm-up, compacts back to back until the load's deadline; records each [start, end). */
async function defragLoop(endpoint: string, go: Go, windows: [number, number][]): Promise<void> {
  const client = rawMaintenance(endpoint);
  try {
    await sleep(go.recordFromMs - now());
    while (windows.length < DEFRAGS_PER_RUN_MAX && now() < go.deadlineMs) {
      const started = now();
      await call(client.Defragment, client, {}, DEFRAG_TIMEOUT_MS);
      windows.push([started, now()]);
    }
  } finally {
    client.close();
  }
}
