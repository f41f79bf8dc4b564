/**
 * The watch fan-out's floor (phase `floor`): the watch phase's workload
 * against etcd, against bench/floor-server.ts at each of its stages (a fresh
 * process each, its own temporary directory), and against mergekv, in that
 * order, BENCH_ISSUE3_ROUNDS times. The floor server does only the steps
 * mergekv's design puts on every put (the HTTP/2 round trip, the frontend's
 * hop, its Automerge write, a synced Level write) and the fan-out: what it
 * reaches at `durable` bounds what any server built that way reaches on this
 * machine, and the gaps between stages price each step.
 */
import { BenchConfig } from "./config";
import { Cleanup } from "./processes";
import { ServerHandle, startFloor } from "./servers";
import { FLOOR_STAGES, FloorStage } from "./floor-server";
import { Issue3Knobs } from "./issue3-common";
import { runWatch, WatchRun } from "./watch-bench";

/** Who served a floor run: etcd, mergekv, or the floor server at a stage. */
export type FloorTarget = "etcd" | "mergekv" | FloorStage;

export interface FloorRun {
  target: FloorTarget;
  round: number;
  run: WatchRun;
}

/**
 * `warm` is the config of each target's first run (the longer warm-up);
 * `report` prints a run's line as it ends.
 */
export async function runFloor(cfg: BenchConfig, warm: BenchConfig, knobs: Issue3Knobs, cleanup: Cleanup, etcd: ServerHandle, mergekv: ServerHandle, report: (r: FloorRun) => void): Promise<FloorRun[]> {
  const out: FloorRun[] = [];
  const targets: FloorTarget[] = ["etcd", ...FLOOR_STAGES, "mergekv"];
  for (let round = 1; round <= knobs.rounds; round++) {
    for (const target of targets) {
      const c = round === 1 ? warm : cfg;
      let run: WatchRun;
      if (target === "etcd" || target === "mergekv") run = await runWatch(c, knobs, target === "etcd" ? etcd : mergekv);
      else {
        const floor = await startFloor(cleanup, target);
        try {
          run = await runWatch(warm, knobs, floor); // a fresh process each round: always warmed up
        } finally {
          await floor.stop();
          await cleanup.removeDir(floor.dataDir);
        }
      }
      const r = { target, round, run };
      report(r);
      out.push(r);
    }
  }
  return out;
}
