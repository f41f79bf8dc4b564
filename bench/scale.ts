/**
 * mergekv at scale: bulk-load keys, measure the whole server's RSS, stop it
 * with SIGTERM, restart it on the same data dir (fsync on) and time until it
 * serves. 100k keys always; 1M with BENCH_MILLION=1, loaded on top of the
 * same data dir. The compaction phase runs on the 100k-key server.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { BenchConfig } from "./config";
import { Cleanup, peakRssBytes, rssBytes } from "./processes";
import { MergekvStartup, ServerHandle, parseMergekvStartup, startMergekv } from "./servers";
import { CompactionResult, runCompaction } from "./compaction";
import { fill, FillResult, log } from "./common";
import { LoadControl } from "./load";
import { Go } from "./workload";
import { call, rawMaintenance } from "./wire";

/** Idle time after a restart before RSS is read again (lazy work and GC settle). */
const SETTLE_MS = 3_000;
/** How often the bulk load's progress and the server's RSS are sampled. */
const SAMPLE_INTERVAL_MS = 15_000;

/** One point of a bulk load's trajectory. */
export interface FillSample {
  elapsedS: number;
  keys: number;
  rssBytes: number;
}

export interface ScaleStep {
  /** Keys the server holds (fewer than `targetKeys` when the load was stopped by a bound). */
  keys: number;
  targetKeys: number;
  fill: FillResult & { noFsync: boolean; from: number; stoppedBecause?: string };
  /** Keys and RSS over the bulk load. */
  trajectory: FillSample[];
  /** Whole-server RSS right after the bulk load, and its peak (VmHWM) during it. */
  rssAfterLoadBytes: number;
  peakRssDuringLoadBytes: number;
  /** SIGTERM to exit of the loading server, ms (it drains and closes its store first). */
  stopMs: number;
  dataDirBytes: number;
  /** Spawn to "serving client requests", wall clock (includes Node's own start). */
  restartMs: number;
  /** What the server logged about its recovery. */
  startup: MergekvStartup | null;
  rssAtReadyBytes: number;
  rssSettledBytes: number;
  peakRssRestartBytes: number;
}

export interface ScaleResult {
  steps: ScaleStep[];
  compaction?: CompactionResult;
}

/** `onProgress` is called after each step and the compaction phase with what is known so far. */
export async function runScale(cfg: BenchConfig, cleanup: Cleanup, onProgress?: (sofar: ScaleResult) => Promise<void>): Promise<ScaleResult> {
  const dataDir = path.join(await cleanup.tempDir("bench-scale-"), "data");
  const out: ScaleResult = { steps: [] };
  const targets = [cfg.scaleKeys, ...(cfg.million && cfg.phases.has("scale") ? [cfg.millionKeys] : [])];
  let loaded = 0;
  for (const keys of targets) {
    if (keys <= loaded) throw new Error(`scale steps must grow: ${keys} after ${loaded}`);
    const { step, server } = await scaleStep(cfg, cleanup, dataDir, loaded, keys);
    loaded = step.keys;
    try {
      if (cfg.phases.has("scale")) out.steps.push(step);
      await onProgress?.(out);
      if (keys === cfg.scaleKeys && cfg.phases.has("compaction")) {
        out.compaction = await runCompaction(cfg, server, keys);
        await onProgress?.(out);
      }
    } finally {
      await server.stop();
    }
  }
  await cleanup.removeDir(path.dirname(dataDir));
  return out;
}

/** Loads keys [from, to) into the data dir, measures, restarts; returns the restarted (running) server. */
async function scaleStep(cfg: BenchConfig, cleanup: Cleanup, dataDir: string, from: number, to: number): Promise<{ step: ScaleStep; server: ServerHandle }> {
  const loadArgs = [...cfg.mergekvArgs, ...(cfg.fillNoFsync ? ["--unsafe-no-fsync"] : [])];
  const loader = await startMergekv(cleanup, { dataDir, args: loadArgs });
  log(`scale: loading keys ${from}..${to} into mergekv, ${cfg.fillBatch} per request (pid ${loader.proc.pid}${cfg.fillNoFsync ? ", --unsafe-no-fsync for the bulk load only" : ", fsync on"})`);
  let filled: FillResult;
  let rssAfterLoadBytes: number;
  let peakRssDuringLoadBytes: number;
  const trajectory: FillSample[] = [];
  const why: { stoppedBecause?: string } = {};
  try {
    const sampler = (go: Go, control: LoadControl) => sampleFill(cfg, loader, from, go, control, trajectory, why);
    filled = await fill(cfg, loader, from, to, { batch: cfg.fillBatch, allowPartial: true, alongside: sampler });
    rssAfterLoadBytes = rssBytes(loader.proc.pid);
    peakRssDuringLoadBytes = peakRssBytes(loader.proc.pid);
  } catch (e) {
    await loader.stop().catch(() => undefined);
    throw e;
  }
  if (!filled.complete) why.stoppedBecause ??= `time bound (BENCH_FILL_MINUTES=${cfg.fillMinutes})`;
  log(`scale: ${from + filled.keys} keys loaded at ${filled.keysPerSec.toFixed(0)} keys/s${filled.complete ? "" : ` (STOPPED at ${why.stoppedBecause})`}; ` +
    `RSS ${mib(rssAfterLoadBytes)} (peak ${mib(peakRssDuringLoadBytes)})`);
  const stopMs = await loader.stop();
  const dataDirBytes = await dirBytes(dataDir);
  const server = await startMergekv(cleanup, { dataDir, args: cfg.mergekvArgs, timeoutMs: cfg.startTimeoutMs });
  const rssAtReadyBytes = rssBytes(server.proc.pid);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const step: ScaleStep = {
    keys: from + filled.keys,
    targetKeys: to,
    fill: { ...filled, noFsync: cfg.fillNoFsync, from, ...why },
    trajectory,
    rssAfterLoadBytes,
    peakRssDuringLoadBytes,
    stopMs,
    dataDirBytes,
    restartMs: server.proc.readyMs,
    startup: parseMergekvStartup(server.proc.output()),
    rssAtReadyBytes,
    rssSettledBytes: rssBytes(server.proc.pid),
    peakRssRestartBytes: peakRssBytes(server.proc.pid),
  };
  log(`scale: ${step.keys} keys: restart (fsync on) ${step.restartMs.toFixed(0)} ms wall, server says ${step.startup?.startedMs} ms, ` +
    `replayed ${step.startup?.changeRecords} change records; RSS at ready ${mib(rssAtReadyBytes)}, settled ${mib(step.rssSettledBytes)}, ` +
    `peak ${mib(step.peakRssRestartBytes)}; data dir ${mib(dataDirBytes)}`);
  return { step, server };
}

/** Samples keys loaded (from the server's revision) and RSS; stops the load if RSS passes the abort bound. */
async function sampleFill(cfg: BenchConfig, server: ServerHandle, from: number, go: Go, control: LoadControl, out: FillSample[], why: { stoppedBecause?: string }): Promise<void> {
  const client = rawMaintenance(server.endpoint);
  const started = performance.timeOrigin + performance.now();
  const rev0 = Number((await call(client.Status, client, {}, 10_000)).header.revision);
  try {
    let next = started + SAMPLE_INTERVAL_MS;
    while (!control.done && performance.timeOrigin + performance.now() < go.deadlineMs) {
      await new Promise((r) => setTimeout(r, 500));
      const t = performance.timeOrigin + performance.now();
      if (t < next) continue;
      next += SAMPLE_INTERVAL_MS;
      const rss = rssBytes(server.proc.pid);
      const rev = Number((await call(client.Status, client, {}, 10_000).catch(() => ({ header: { revision: NaN } }))).header.revision);
      out.push({ elapsedS: Math.round((t - started) / 1000), keys: from + rev - rev0, rssBytes: rss });
      if (out.length % 8 === 0) log(`scale: ${from + rev - rev0} keys after ${((t - started) / 1000).toFixed(0)} s, RSS ${mib(rss)}`);
      if (rss > cfg.rssAbortBytes) {
        why.stoppedBecause = `RSS ${mib(rss)} over BENCH_RSS_ABORT_GIB`;
        control.stop();
        return;
      }
    }
  } finally {
    client.close();
  }
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await dirBytes(p);
    else if (entry.isFile()) total += (await fs.stat(p)).size;
  }
  return total;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}
