/**
 * `npm run bench`: mergekv against a real etcd, side by side, on loopback.
 * Phases (BENCH_PHASES, default all): the load generator's ceiling, the core
 * comparison (puts, serializable gets, compare-and-swap), the scale steps
 * (RSS and restart time at 100k keys, and 1M with BENCH_MILLION=1), and put
 * latency during an online compaction. Prints a table with the issue's
 * targets and writes bench/results/latest.json.
 *
 * Every process it starts and every directory it makes is removed when it
 * ends, however it ends (error, SIGINT, SIGTERM).
 */
import * as path from "node:path";
import * as os from "node:os";
import { promises as fs } from "node:fs";
import { readConfig, BenchConfig } from "./config";
import { Cleanup } from "./processes";
import { runCeiling } from "./ceiling";
import { runCore } from "./core";
import { runScale } from "./scale";
import { log } from "./common";
import { BenchResults, machine, printReport, verdicts } from "./report";
import { runIssue3, takeIssue3Phases } from "./issue3";

const RESULTS_PATH = path.join(__dirname, "..", "..", "bench", "results", "latest.json");

async function run(cfg: BenchConfig, cleanup: Cleanup): Promise<BenchResults> {
  const started = new Date();
  const results: BenchResults = { date: started.toISOString(), machine: await machine(), settings: settings(cfg), targets: [], partial: true };
  // Written after every phase and scale step: a long run stopped part way still leaves its figures.
  const checkpoint = () => save(cfg.resultsPath, { ...results, targets: verdicts(results) });
  if (cfg.phases.has("ceiling")) {
    results.ceiling = await runCeiling(cfg, cleanup);
    await checkpoint();
  }
  if (cfg.phases.has("core")) {
    results.core = await runCore(cfg, cleanup);
    await checkpoint();
  }
  if (cfg.phases.has("scale") || cfg.phases.has("compaction")) {
    const s = await runScale(cfg, cleanup, async (partial) => {
      results.scale = partial.steps;
      results.compaction = partial.compaction;
      await checkpoint();
    });
    results.scale = s.steps;
    results.compaction = s.compaction;
  }
  results.durationS = (Date.now() - started.getTime()) / 1000;
  results.partial = false;
  results.targets = verdicts(results);
  return results;
}

async function save(file: string, results: BenchResults): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
}

function settings(cfg: BenchConfig): BenchResults["settings"] {
  return {
    seconds: cfg.seconds,
    warmupSeconds: cfg.warmupSeconds,
    rounds: cfg.rounds,
    clients: cfg.clients,
    loadThreads: cfg.threads,
    channelsPerThread: 1,
    keyspace: cfg.keyspace,
    valueBytes: cfg.valueBytes,
    client: cfg.client,
    phases: [...cfg.phases],
    million: cfg.million,
    scaleKeys: cfg.scaleKeys,
    millionKeys: cfg.millionKeys,
    fillClients: cfg.fillClients,
    fillBatch: cfg.fillBatch,
    fillNoFsync: cfg.fillNoFsync,
    mergekv: { durability: "fsync on (default)", frontends: `default (${os.availableParallelism()} here)`, internalReplication: 1, extraArgs: cfg.mergekvArgs },
    etcd: { version: "3.4.23 (Debian)", flags: "defaults, single member, loopback" },
  };
}

async function main(): Promise<void> {
  const issue3 = takeIssue3Phases(); // watch, lease, auth: bench/issue3.ts
  const cfg = readConfig(RESULTS_PATH);
  const cleanup = new Cleanup();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping every process and removing temp dirs`);
    cleanup.all().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", () => cleanup.allSync());
  try {
    if (issue3.only) return await runIssue3(cfg, cleanup, issue3.phases);
    const results = await run(cfg, cleanup);
    printReport(results);
    await save(cfg.resultsPath, results);
    log(`results written to ${cfg.resultsPath}`);
    if (issue3.phases.length) await runIssue3(cfg, cleanup, issue3.phases);
  } finally {
    await cleanup.all();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
