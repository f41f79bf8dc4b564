/**
 * `node dist/bench/profile.js` (after `npm run build`): profiles the mergekv
 * server (node --cpu-prof, every thread) under the core put workload and
 * prints the top self-time functions and packages per thread. The
 * .cpuprofile files stay in a temporary directory (removed at the end) unless
 * BENCH_PROFILE_DIR names a directory to keep them in; the summary goes to
 * bench/results/profile-latest.json. Settings as for the benchmark
 * (BENCH_SECONDS, BENCH_CLIENTS, BENCH_KEYS, BENCH_CLIENT, BENCH_MERGEKV_ARGS),
 * plus BENCH_PROFILE_WORKLOAD (put, get or cas; default put) and
 * BENCH_PROFILE_RESTART=1 (preload unprofiled, then profile the restart on
 * that data dir and the load after it). Summaries cover the measured load
 * window and the start-up separately (samples are filtered by timestamp).
 */
import * as path from "node:path";
import { promises as fs } from "node:fs";
import { readConfig } from "./config";
import { Cleanup } from "./processes";
import { startMergekv } from "./servers";
import { runLoad } from "./load";
import { describe } from "./core";
import { fill, log } from "./common";
import { monotonicUs, summarizeDir, ThreadProfile, Window } from "./cpu-profile";
import { Workload } from "./workload";

const SUMMARY_PATH = path.join(__dirname, "..", "..", "bench", "results", "profile-latest.json");
const TOP_FUNCTIONS = 25;

async function run(cleanup: Cleanup): Promise<void> {
  const cfg = readConfig(SUMMARY_PATH);
  const workload = (process.env.BENCH_PROFILE_WORKLOAD || "put") as Workload;
  if (!["put", "get", "cas"].includes(workload)) throw new Error(`BENCH_PROFILE_WORKLOAD must be put, get or cas, got ${workload}`);
  const restart = process.env.BENCH_PROFILE_RESTART === "1";
  const keep = process.env.BENCH_PROFILE_DIR;
  const dir = keep ? path.resolve(keep) : await cleanup.tempDir("bench-profile-");
  await fs.mkdir(dir, { recursive: true });
  const profiling = { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", dir], timeoutMs: cfg.startTimeoutMs };
  let dataDir: string | undefined;
  if (restart) {
    // Preload without the profiler, then profile a restart on the same data dir and the load after it.
    const loader = await startMergekv(cleanup, { args: cfg.mergekvArgs });
    dataDir = loader.dataDir;
    try {
      const pre = await fill(cfg, loader, 0, cfg.keyspace);
      log(`preloaded ${pre.keys} keys at ${pre.keysPerSec.toFixed(0)} keys/s (not profiled)`);
    } finally {
      await loader.stop();
    }
  }
  const spawnedUs = monotonicUs();
  const server = await startMergekv(cleanup, { args: cfg.mergekvArgs, dataDir, ...profiling });
  const startup: Window = { fromUs: spawnedUs, toUs: monotonicUs() };
  log(`mergekv (profiling into ${dir}) on ${server.endpoint}, ready in ${server.proc.readyMs.toFixed(0)} ms`);
  let summary: string;
  let load: Window;
  try {
    if (!restart) {
      const pre = await fill(cfg, server, 0, cfg.keyspace);
      log(`preloaded ${pre.keys} keys at ${pre.keysPerSec.toFixed(0)} keys/s`);
    }
    const fromUs = monotonicUs() + cfg.warmupSeconds * 1e6;
    const r = await runLoad({
      workload, endpoint: server.endpoint, client: cfg.client, clients: cfg.clients, threads: cfg.threads, keyspace: cfg.keyspace,
      valueBytes: cfg.valueBytes, warmupMs: cfg.warmupSeconds * 1000, durationMs: cfg.seconds * 1000, serverPid: server.proc.pid,
    });
    load = { fromUs, toUs: monotonicUs() };
    summary = `${workload} at ${cfg.keyspace} keys: ${describe(r)}`;
    log(summary);
  } finally {
    await server.stop();
  }
  const windows = { load: await summarizeDir(dir, TOP_FUNCTIONS, load), startup: await summarizeDir(dir, TOP_FUNCTIONS, startup) };
  process.stdout.write(`\n=== ${workload} load (measured window only) ===\n`);
  print(windows.load);
  process.stdout.write(`\n=== start-up${restart ? ` (recovery of ${cfg.keyspace} keys)` : ""} ===\n`);
  print(windows.startup.filter((t) => t.busyMs > 0));
  await fs.mkdir(path.dirname(cfg.resultsPath), { recursive: true });
  await fs.writeFile(cfg.resultsPath, `${JSON.stringify({ date: new Date().toISOString(), workload, keys: cfg.keyspace, restart, run: summary, windows }, null, 2)}\n`);
  log(`summary written to ${cfg.resultsPath}${keep ? `; profiles kept in ${dir}` : ""}`);
}

function print(threads: ThreadProfile[]): void {
  for (const t of threads) {
    process.stdout.write(`\n${t.thread} (${t.file}): busy ${t.busyMs.toFixed(0)} ms, idle ${t.idleMs.toFixed(0)} ms\n  by package:\n`);
    for (const p of t.byPackage.slice(0, 10)) process.stdout.write(`    ${p.ms.toFixed(0).padStart(7)} ms ${p.percent.toFixed(1).padStart(5)}%  ${p.name}\n`);
    process.stdout.write("  mergekv functions, inclusive (callees counted):\n");
    for (const f of t.mergekvInclusive.slice(0, 15)) process.stdout.write(`    ${f.ms.toFixed(0).padStart(7)} ms ${f.percent.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}\n`);
    process.stdout.write("  top self time:\n");
    for (const f of t.top) process.stdout.write(`    ${f.ms.toFixed(0).padStart(7)} ms ${f.percent.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}\n`);
  }
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  process.on("exit", () => cleanup.allSync());
  for (const s of ["SIGINT", "SIGTERM"] as const) process.on(s, () => void cleanup.all().finally(() => process.exit(130)));
  try {
    await run(cleanup);
  } finally {
    await cleanup.all();
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`profile failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
