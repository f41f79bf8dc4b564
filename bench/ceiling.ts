/**
 * The load generator's own ceiling: the same workloads, threads and clients
 * against a no-op gRPC server (its own process) that answers every request at
 * once. Whatever a real server reaches, it cannot exceed this on this machine.
 */
import { BenchConfig, ClientKind } from "./config";
import { CORE_WORKLOADS, describe } from "./core";
import { runLoad } from "./load";
import { Cleanup } from "./processes";
import { startNoop } from "./servers";
import { Workload } from "./workload";
import { figures, log, RunFigures } from "./common";

/** Ceiling runs are shorter than measured ones: they only bound. */
const CEILING_SECONDS_MAX = 5;

export interface CeilingRun {
  client: ClientKind;
  workload: Workload;
  figures: RunFigures;
  /** Load-generator CPU microseconds per op (what it takes from the server under test). */
  loadgenCpuUsPerOp: number;
}

export async function runCeiling(cfg: BenchConfig, cleanup: Cleanup): Promise<CeilingRun[]> {
  const noop = await startNoop(cleanup);
  log(`no-op gRPC server on ${noop.endpoint} (pid ${noop.proc.pid})`);
  const seconds = Math.min(cfg.seconds, CEILING_SECONDS_MAX);
  const out: CeilingRun[] = [];
  try {
    for (const client of ["h2", "raw", "etcd3"] as ClientKind[]) {
      for (const workload of CORE_WORKLOADS) {
        const r = await runLoad({
          workload,
          endpoint: noop.endpoint,
          client,
          clients: cfg.clients,
          threads: cfg.threads,
          keyspace: cfg.keyspace,
          valueBytes: cfg.valueBytes,
          warmupMs: cfg.warmupSeconds * 1000,
          durationMs: seconds * 1000,
          serverPid: noop.proc.pid,
        });
        const f = figures(r);
        out.push({ client, workload, figures: f, loadgenCpuUsPerOp: (r.loadgenCores * 1e6) / r.opsPerSec });
        log(`ceiling ${client.padEnd(5)} ${workload.padEnd(3)} ${describe(r)}`);
      }
    }
  } finally {
    await noop.stop();
  }
  return out;
}
