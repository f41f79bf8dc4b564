/**
 * The issue-3 targets' floor (phase `floor`): the watch phase's workload,
 * then the lease phase's (BENCH_FLOOR_WORKLOADS, default both), each against
 * etcd, against bench/floor-server.ts at each of its stages (a fresh process
 * each, its own temporary directory), and against mergekv, in that order,
 * BENCH_ISSUE3_ROUNDS times. The floor server does only the steps mergekv's
 * design puts on every write (the HTTP/2 round trip, the frontend's hop, its
 * Automerge write, a synced Level write) and the fan-out: what it reaches
 * at `durable` bounds what any server built that way reaches on this
 * machine, and the gaps between stages price each step.
 */
import { BenchConfig } from "./config";
import { Cleanup } from "./processes";
import { ServerHandle, startFloor } from "./servers";
import { FLOOR_STAGES, FloorStage } from "./floor-server";
import { Issue3Knobs } from "./issue3-common";
import { runWatch, WatchRun } from "./watch-bench";
import { runLease, LeaseRun } from "./lease-bench";

export type FloorWorkload = "watch" | "lease";
const FLOOR_WORKLOADS: FloorWorkload[] = ["watch", "lease"];

/** Who served a floor run: etcd, mergekv, or the floor server at a stage. */
export type FloorTarget = "etcd" | "mergekv" | FloorStage;

export type FloorRun = { target: FloorTarget; round: number } & ({ workload: "watch"; run: WatchRun } | { workload: "lease"; run: LeaseRun });

function workloads(): FloorWorkload[] {
  const raw = process.env.BENCH_FLOOR_WORKLOADS;
  if (!raw) return FLOOR_WORKLOADS;
  const asked = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const w of asked) if (!FLOOR_WORKLOADS.includes(w as FloorWorkload)) throw new Error(`BENCH_FLOOR_WORKLOADS: unknown workload ${JSON.stringify(w)} (known: ${FLOOR_WORKLOADS.join(", ")})`);
  return asked as FloorWorkload[];
}

async function runOne(workload: FloorWorkload, target: FloorTarget, round: number, c: BenchConfig, knobs: Issue3Knobs, server: ServerHandle): Promise<FloorRun> {
  return workload === "watch" ? { workload, target, round, run: await runWatch(c, knobs, server) } : { workload, target, round, run: await runLease(c, knobs, server) };
}

/**
 * `warm` is the config of each target's first run (the longer warm-up);
 * `report` prints a run's line as it ends.
 */
export async function runFloor(cfg: BenchConfig, warm: BenchConfig, knobs: Issue3Knobs, cleanup: Cleanup, etcd: ServerHandle, mergekv: ServerHandle, report: (r: FloorRun) => void): Promise<FloorRun[]> {
  const out: FloorRun[] = [];
  const targets: FloorTarget[] = ["etcd", ...FLOOR_STAGES, "mergekv"];
  for (const workload of workloads()) {
    for (let round = 1; round <= knobs.rounds; round++) {
      for (const target of targets) {
        let r: FloorRun;
        if (target === "etcd" || target === "mergekv") r = await runOne(workload, target, round, round === 1 ? warm : cfg, knobs, target === "etcd" ? etcd : mergekv);
        else {
          const floor = await startFloor(cleanup, target);
          try {
            r = await runOne(workload, target, round, warm, knobs, floor); // a fresh process each round: always warmed up
          } finally {
            await floor.stop();
            await cleanup.removeDir(floor.dataDir);
          }
        }
        report(r);
        out.push(r);
      }
    }
  }
  return out;
}
