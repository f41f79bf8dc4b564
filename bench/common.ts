/**
 * Helpers every phase uses: the progress log, the bulk loader, and the
 * serializable figures of one run.
 */
import { BenchConfig } from "./config";
import { errorTotal, LoadControl, LoadResult, runLoad } from "./load";
import { Go } from "./workload";
import { ServerHandle } from "./servers";

export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** What one measured run reports (the raw samples left out). */
export interface RunFigures {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  ops: number;
  windowMs: number;
  errors: number;
  casSucceeded?: number;
  casFailed?: number;
  serverCores?: number;
  loadgenCores: number;
  /** CPU used by everything else on the machine during the run (noise), cores. */
  otherCores?: number;
  /** CPU the hypervisor gave other guests meanwhile (steal), cores. */
  stolenCores?: number;
}

export function figures(r: LoadResult): RunFigures {
  return {
    opsPerSec: r.opsPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    meanMs: r.meanMs,
    maxMs: r.maxMs,
    ops: r.ops,
    windowMs: r.windowMs,
    errors: errorTotal(r),
    ...(r.workload === "cas" ? { casSucceeded: r.casSucceeded, casFailed: r.casFailed } : {}),
    serverCores: r.serverCores,
    loadgenCores: r.loadgenCores,
    otherCores: r.otherCores,
    stolenCores: r.stolenCores,
  };
}

export interface FillResult {
  /** Keys written (fewer than asked when the load was stopped by a bound). */
  keys: number;
  complete: boolean;
  /** Keys per request. */
  batch: number;
  ms: number;
  keysPerSec: number;
  errors: number;
}

export interface FillOptions {
  /** Keys per request (1: plain puts; more: one Txn). */
  batch?: number;
  /** A load stopped early (time bound, or `alongside` stopping it) is reported, not thrown. */
  allowPartial?: boolean;
  /** Runs while the load does (e.g. a sampler that may stop it). */
  alongside?: (go: Go, control: LoadControl) => Promise<unknown>;
}

/** Writes keys [from, to) once each with `fillClients` concurrent requests, for at most BENCH_FILL_MINUTES. */
export async function fill(cfg: BenchConfig, server: ServerHandle, from: number, to: number, o: FillOptions = {}): Promise<FillResult> {
  const batch = o.batch ?? 1;
  const r = await runLoad({
    workload: "fill",
    endpoint: server.endpoint,
    client: cfg.client,
    clients: cfg.fillClients,
    threads: cfg.threads,
    keyspace: to,
    valueBytes: cfg.valueBytes,
    warmupMs: 0,
    durationMs: cfg.fillMinutes * 60_000,
    fill: { from, to, batch },
    alongside: o.alongside,
  });
  const errors = errorTotal(r);
  const complete = r.keysWritten === to - from;
  if (errors > 0 || (!complete && !o.allowPartial)) {
    throw new Error(`bulk load into ${server.system} wrote ${r.keysWritten} of ${to - from} keys with ${errors} errors: ${r.errorSamples.join(" | ")}`);
  }
  return { keys: r.keysWritten, complete, batch, ms: r.windowMs, keysPerSec: r.keysWritten / (r.windowMs / 1000), errors };
}
