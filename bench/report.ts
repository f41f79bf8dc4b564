/**
 * The results: what is recorded (the JSON file), the issue's targets with a
 * verdict each, and the tables printed at the end of a run.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CeilingRun } from "./ceiling";
import { CoreResult } from "./core";
import { CompactionResult } from "./compaction";
import { ScaleStep, mib } from "./scale";

export interface BenchResults {
  date: string;
  durationS?: number;
  /** True while the run is still going (or if it was stopped): the file is a checkpoint. */
  partial?: boolean;
  machine: Record<string, unknown>;
  settings: Record<string, unknown>;
  ceiling?: CeilingRun[];
  core?: CoreResult;
  scale?: ScaleStep[];
  compaction?: CompactionResult;
  targets: Verdict[];
}

export interface Verdict {
  target: string;
  measured: string;
  verdict: "met" | "not met" | "not measured";
}

const GIB = 1024 * 1024 * 1024;

function tryRun(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    return "unknown";
  }
}

/** A fingerprint of the server build under test (dist/src), so results name exactly what ran. */
function buildHash(dir: string): string {
  const hash = createHash("sha256");
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".js")) hash.update(p.slice(dir.length)).update(readFileSync(p));
    }
  };
  try {
    walk(dir);
    return hash.digest("hex").slice(0, 12);
  } catch {
    return "unknown";
  }
}

export async function machine(): Promise<Record<string, unknown>> {
  const repo = path.join(__dirname, "..", "..");
  const dirty = tryRun("git", ["status", "--porcelain", "--", "src"], repo);
  const commit = tryRun("git", ["rev-parse", "--short", "HEAD"], repo);
  return {
    cpu: os.cpus()[0]?.model,
    cores: os.availableParallelism(),
    memoryGiB: +(os.totalmem() / GIB).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    etcd: tryRun("etcd", ["--version"]).split("\n")[0],
    tmpdir: os.tmpdir(),
    tmpdirFs: tryRun("df", ["--output=fstype", os.tmpdir()]).split("\n").pop(),
    mergekvCommit: commit === "unknown" ? process.env.BENCH_MERGEKV_COMMIT ?? "unknown" : commit + (dirty && dirty !== "unknown" ? " (src modified)" : ""),
    mergekvBuild: buildHash(path.join(repo, "dist", "src")),
  };
}

function verdict(target: string, measured: string, ok: boolean | null): Verdict {
  return { target, measured, verdict: ok === null ? "not measured" : ok ? "met" : "not met" };
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));

export function verdicts(r: BenchResults): Verdict[] {
  const put = r.core?.medians.find((m) => m.workload === "put");
  const get = r.core?.medians.find((m) => m.workload === "get");
  const million = r.scale?.find((s) => s.targetKeys >= 1_000_000);
  const out: Verdict[] = [];
  out.push(put
    ? verdict("durable puts/s >= 3x etcd", `${fmt(put.mergekv.opsPerSec)} vs ${fmt(put.etcd.opsPerSec)} puts/s = ${fmt(put.ratio.opsPerSec, 2)}x`, put.ratio.opsPerSec >= 3)
    : verdict("durable puts/s >= 3x etcd", "-", null));
  out.push(put
    ? verdict("put p99 <= etcd's", `${fmt(put.mergekv.p99Ms, 1)} vs ${fmt(put.etcd.p99Ms, 1)} ms = ${fmt(put.ratio.p99Ms, 2)}x`, put.ratio.p99Ms <= 1)
    : verdict("put p99 <= etcd's", "-", null));
  out.push(get
    ? verdict("serializable gets/s >= 2x etcd", `${fmt(get.mergekv.opsPerSec)} vs ${fmt(get.etcd.opsPerSec)} gets/s = ${fmt(get.ratio.opsPerSec, 2)}x`, get.ratio.opsPerSec >= 2)
    : verdict("serializable gets/s >= 2x etcd", "-", null));
  if (million) out.push(...millionVerdicts(million));
  else {
    out.push(verdict("whole-server RSS at 1M keys <= 1 GiB", "not run (BENCH_MILLION=1)", null));
    out.push(verdict("restart with 1M keys <= 5 s", "not run (BENCH_MILLION=1)", null));
  }
  const c = r.compaction;
  out.push(c
    ? verdict("put p99 during compaction <= 2x without", `${fmt(c.duringP99Ms, 1)} vs ${fmt(c.baselineP99Ms, 1)} ms = ${fmt(c.ratio, 2)}x`, c.ratio <= 2)
    : verdict("put p99 during compaction <= 2x without", "-", null));
  return out;
}

/**
 * RSS and restart time only grow with the keys held, so a load stopped short
 * of 1M keys still fails a target whose bound it already passed; if it did
 * not pass it, the target is not measured.
 */
function millionVerdicts(m: ScaleStep): Verdict[] {
  const short = m.keys < m.targetKeys ? ` at ${m.keys} keys (load stopped: ${m.fill.stoppedBecause ?? "?"})` : "";
  const rss = Math.max(m.rssAfterLoadBytes, m.rssSettledBytes);
  const rssOk = rss <= GIB ? (short ? null : true) : false;
  const restartOk = m.restartMs <= 5_000 ? (short ? null : true) : false;
  return [
    verdict("whole-server RSS at 1M keys <= 1 GiB", `${mib(rss)}${short} (after load ${mib(m.rssAfterLoadBytes)}, after restart ${mib(m.rssSettledBytes)}; peak ${mib(Math.max(m.peakRssDuringLoadBytes, m.peakRssRestartBytes))})`, rssOk),
    verdict("restart with 1M keys <= 5 s", `${fmt(m.restartMs)} ms to serving${short} (server: ${m.startup?.startedMs ?? "-"} ms)`, restartOk),
  ];
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

function ceilingTable(runs: CeilingRun[]): string {
  return table(["client", "workload", "ops/s", "p50 ms", "p99 ms", "loadgen cores", "loadgen µs/op", "no-op server cores", "other procs cores", "stolen cores"],
    runs.map((r) => [r.client, r.workload, fmt(r.figures.opsPerSec), fmt(r.figures.p50Ms, 2), fmt(r.figures.p99Ms, 2), fmt(r.figures.loadgenCores, 2), fmt(r.loadgenCpuUsPerOp, 1), fmt(r.figures.serverCores, 2), fmt(r.figures.otherCores, 2), fmt(r.figures.stolenCores, 2)]));
}

function coreTable(core: CoreResult): string {
  return table(["workload", "etcd ops/s", "etcd p50", "etcd p99", "mergekv ops/s", "mergekv p50", "mergekv p99", "ops ratio", "p99 ratio", "per-round ops ratios"],
    core.medians.map((m) => [m.workload, fmt(m.etcd.opsPerSec), fmt(m.etcd.p50Ms, 2), fmt(m.etcd.p99Ms, 2), fmt(m.mergekv.opsPerSec), fmt(m.mergekv.p50Ms, 2),
      fmt(m.mergekv.p99Ms, 2), fmt(m.ratio.opsPerSec, 2), fmt(m.ratio.p99Ms, 2), m.opsRatios.map((x) => fmt(x, 2)).join(" ")]));
}

function coreRunsTable(core: CoreResult): string {
  return table(["round", "workload", "system", "ops/s", "p50 ms", "p99 ms", "max ms", "server cores", "loadgen cores", "other procs cores", "stolen cores", "errors", "cas ok"],
    core.runs.map((r) => [String(r.round), r.workload, r.system, fmt(r.figures.opsPerSec), fmt(r.figures.p50Ms, 2), fmt(r.figures.p99Ms, 2), fmt(r.figures.maxMs, 1),
      fmt(r.figures.serverCores, 2), fmt(r.figures.loadgenCores, 2), fmt(r.figures.otherCores, 2), fmt(r.figures.stolenCores, 2), String(r.figures.errors),
      r.figures.casSucceeded === undefined ? "" : `${fmt((100 * r.figures.casSucceeded) / Math.max(1, r.figures.casSucceeded + (r.figures.casFailed ?? 0)), 1)}%`]));
}

function scaleTable(steps: ScaleStep[]): string {
  return table(["keys", "target", "load keys/s", "keys/request", "load fsync", "RSS after load", "peak during load", "stop ms", "data dir", "restart ms (wall)", "server ms", "records replayed", "RSS at ready", "RSS settled", "peak restart"],
    steps.map((s) => [String(s.keys), String(s.targetKeys), fmt(s.fill.keysPerSec), String(s.fill.batch), s.fill.noFsync ? "off (--unsafe-no-fsync)" : "on", mib(s.rssAfterLoadBytes), mib(s.peakRssDuringLoadBytes), fmt(s.stopMs),
      mib(s.dataDirBytes), fmt(s.restartMs), String(s.startup?.startedMs ?? "-"), String(s.startup?.changeRecords ?? "-"), mib(s.rssAtReadyBytes), mib(s.rssSettledBytes), mib(s.peakRssRestartBytes)]));
}

function compactionTable(c: CompactionResult): string {
  return table(["round", "baseline ops/s", "baseline p99", "during ops/s", "during p99 (whole run)", "ops in compactions", "p99 in compactions", "p99 in first", "compactions (ms)"],
    c.rounds.map((r, i) => [String(i + 1), fmt(r.baseline.opsPerSec), fmt(r.baseline.p99Ms, 2), fmt(r.during.opsPerSec), fmt(r.during.p99Ms, 2), String(r.windowOps),
      fmt(r.windowP99Ms, 2), fmt(r.firstWindowP99Ms, 2), r.defragMs.map((ms) => fmt(ms)).join(", ")]));
}

export function printReport(r: BenchResults): void {
  const out: string[] = [];
  const s = r.settings;
  out.push(`\nmergekv vs etcd, ${r.date}, ${String(r.machine.cores)} cores (${String(r.machine.cpu)}), node ${String(r.machine.node)}, ${String(r.machine.etcd)}`);
  out.push(`settings: ${String(s.clients)} clients over ${String(s.loadThreads)} load threads, ${String(s.client)} gRPC client, ${String(s.valueBytes)} B values, ` +
    `keyspace ${String(s.keyspace)}, ${String(s.seconds)} s per run after ${String(s.warmupSeconds)} s warm-up, ${String(s.rounds)} rounds (medians); mergekv fsync on, default frontends`);
  if (r.ceiling) out.push("\nLoad generator ceiling (no-op gRPC server, same machine):\n" + ceilingTable(r.ceiling));
  if (r.core) {
    out.push("\nCore comparison (medians over rounds; ratios = median of mergekv/etcd within each round):\n" + coreTable(r.core));
    out.push("\nEvery run:\n" + coreRunsTable(r.core));
  }
  if (r.scale?.length) {
    out.push(`\nmergekv at scale (bulk load ${r.scale[0].fill.noFsync ? "with --unsafe-no-fsync; restart with fsync on, same data dir" : "with fsync on"}):\n` + scaleTable(r.scale));
    for (const st of r.scale) {
      const points = st.trajectory.filter((_, i, a) => i % Math.max(1, Math.ceil(a.length / 12)) === 0 || i === a.length - 1);
      if (points.length) out.push(`  load to ${st.targetKeys}: ${points.map((p) => `${p.elapsedS} s ${p.keys} keys ${mib(p.rssBytes)}`).join("; ")}`);
    }
  }
  if (r.compaction) out.push(`\nPut latency during online compaction (Defragment, back to back) at ${r.compaction.keys} keys:\n` + compactionTable(r.compaction));
  out.push("\nTargets:\n" + table(["target", "measured", "verdict"], r.targets.map((t) => [t.target, t.measured, t.verdict])));
  process.stdout.write(`${out.join("\n")}\n`);
}
