/**
 * The core comparison: etcd and mergekv side by side, same keyspace, same
 * client, same load, in rounds that alternate which system goes first.
 */
import { BenchConfig } from "./config";
import { errorTotal, LoadResult, runLoad } from "./load";
import { Cleanup } from "./processes";
import { ServerHandle, startEtcd, startMergekv } from "./servers";
import { median } from "./stats";
import { Workload } from "./workload";
import { fill, FillResult, log, RunFigures, figures } from "./common";

export const CORE_WORKLOADS: Workload[] = ["put", "get", "cas"];
type System = "etcd" | "mergekv";

export interface CoreRun {
  round: number;
  system: System;
  workload: Workload;
  figures: RunFigures;
}

export interface CoreMedian {
  workload: Workload;
  etcd: { opsPerSec: number; p50Ms: number; p99Ms: number };
  mergekv: { opsPerSec: number; p50Ms: number; p99Ms: number };
  /** Median over rounds of mergekv/etcd taken within the same round. */
  ratio: { opsPerSec: number; p50Ms: number; p99Ms: number };
  /** The per-round ratios of ops/s, for seeing the spread. */
  opsRatios: number[];
}

export interface CoreResult {
  mergekvArgs: string[];
  preload: { etcd: FillResult; mergekv: FillResult };
  runs: CoreRun[];
  medians: CoreMedian[];
}

export async function runCore(cfg: BenchConfig, cleanup: Cleanup): Promise<CoreResult> {
  const etcd = await startEtcd(cleanup);
  log(`etcd ready on ${etcd.endpoint} in ${etcd.proc.readyMs.toFixed(0)} ms (pid ${etcd.proc.pid}, data ${etcd.dataDir})`);
  const mergekv = await startMergekv(cleanup, { args: cfg.mergekvArgs });
  log(`mergekv ready on ${mergekv.endpoint} in ${mergekv.proc.readyMs.toFixed(0)} ms (pid ${mergekv.proc.pid}, fsync on, args: ${cfg.mergekvArgs.join(" ") || "defaults"})`);
  const servers: Record<System, ServerHandle> = { etcd, mergekv };
  try {
    const preload = {
      etcd: await fill(cfg, etcd, 0, cfg.keyspace),
      mergekv: await fill(cfg, mergekv, 0, cfg.keyspace),
    };
    log(`preloaded ${cfg.keyspace} keys: etcd ${preload.etcd.keysPerSec.toFixed(0)} keys/s, mergekv ${preload.mergekv.keysPerSec.toFixed(0)} keys/s`);
    const runs: CoreRun[] = [];
    for (let round = 1; round <= cfg.rounds; round++) {
      for (const workload of CORE_WORKLOADS) {
        const order: System[] = round % 2 === 1 ? ["etcd", "mergekv"] : ["mergekv", "etcd"];
        for (const system of order) {
          const r = await measure(cfg, servers[system], workload);
          runs.push({ round, system, workload, figures: figures(r) });
          log(`round ${round}/${cfg.rounds} ${workload.padEnd(3)} ${system.padEnd(7)} ${describe(r)}`);
        }
      }
    }
    return { mergekvArgs: cfg.mergekvArgs, preload, runs, medians: CORE_WORKLOADS.map((w) => medians(runs, w)) };
  } finally {
    await mergekv.stop();
    await etcd.stop();
    await cleanup.removeDir(etcd.dataDir);
  }
}

async function measure(cfg: BenchConfig, server: ServerHandle, workload: Workload): Promise<LoadResult> {
  const r = await runLoad({
    workload,
    endpoint: server.endpoint,
    client: cfg.client,
    clients: cfg.clients,
    threads: cfg.threads,
    keyspace: cfg.keyspace,
    valueBytes: cfg.valueBytes,
    warmupMs: cfg.warmupSeconds * 1000,
    durationMs: cfg.seconds * 1000,
    serverPid: server.proc.pid,
  });
  if (errorTotal(r) > 0) log(`  ${server.system} ${workload}: ${errorTotal(r)} errors: ${r.errorSamples.join(" | ")}`);
  return r;
}

export function describe(r: LoadResult): string {
  const cas = r.workload === "cas" ? `, cas ok ${((100 * r.casSucceeded) / Math.max(1, r.casSucceeded + r.casFailed)).toFixed(1)}%` : "";
  return `${r.opsPerSec.toFixed(0).padStart(6)} ops/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms` +
    `  cores: server ${(r.serverCores ?? NaN).toFixed(2)}, loadgen ${r.loadgenCores.toFixed(2)}, others ${(r.otherCores ?? NaN).toFixed(2)} stolen ${(r.stolenCores ?? NaN).toFixed(2)}${cas}`;
}

function medians(runs: CoreRun[], workload: Workload): CoreMedian {
  const of = (system: System) => runs.filter((r) => r.workload === workload && r.system === system);
  const pick = (system: System) => {
    const rs = of(system);
    return {
      opsPerSec: median(rs.map((r) => r.figures.opsPerSec)),
      p50Ms: median(rs.map((r) => r.figures.p50Ms)),
      p99Ms: median(rs.map((r) => r.figures.p99Ms)),
    };
  };
  const rounds = [...new Set(runs.map((r) => r.round))];
  const paired = (field: "opsPerSec" | "p50Ms" | "p99Ms") => rounds.map((round) => {
    const e = runs.find((r) => r.round === round && r.workload === workload && r.system === "etcd");
    const m = runs.find((r) => r.round === round && r.workload === workload && r.system === "mergekv");
    return e && m ? m.figures[field] / e.figures[field] : NaN;
  });
  const opsRatios = paired("opsPerSec");
  return {
    workload,
    etcd: pick("etcd"),
    mergekv: pick("mergekv"),
    ratio: { opsPerSec: median(opsRatios), p50Ms: median(paired("p50Ms")), p99Ms: median(paired("p99Ms")) },
    opsRatios,
  };
}
