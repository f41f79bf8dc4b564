/**
 * The issue-3 phases, `watch`, `lease`, `auth` and `catchup`, run by bench.ts when
 * BENCH_PHASES names them (or when it is unset: then after the harness's own
 * phases). One etcd and one mergekv (fresh temporary data dirs, loopback) are
 * started for them. The watch and lease phases run BENCH_ISSUE3_ROUNDS times
 * (default 3), alternating etcd and mergekv, and report each system's median
 * run; each server's first run of a phase comes after
 * BENCH_ISSUE3_WARMUP_SECONDS (default 20) of unmeasured load. A watch or
 * lease run during which the hypervisor took more than BENCH_ISSUE3_STEAL_MAX
 * hundredths of a core (steal; default 30) is run again, at most
 * BENCH_ISSUE3_STEAL_RETRIES times (default 2); the auth phase is not (it
 * leaves users and roles on the server). The servers
 * are stopped and their directories removed at the end. `auth` runs last (it
 * enables auth, then disables it), then `catchup` (once per server: it fills
 * the servers with its keys and revisions), then `bulkdelete` (once per
 * server: a prefix of keys, then one DeleteRange of it while others put), then
 * `txn` (once per server: multi-key Txns one at a time, bench/txn-bench.ts),
 * then `replication` (puts at each internal replication factor, set on the
 * running mergekv; etcd once, as the reference: bench/replication-bench.ts).
 * `floor` (bench/floor-bench.ts) runs only when named: the watch and lease
 * workloads against a server doing only the steps mergekv's design puts on
 * a write, stage by stage, between etcd and mergekv.
 * Prints a table with the issue's targets and writes
 * bench/results/issue3-latest.json (BENCH_ISSUE3_RESULTS to change it); the
 * harness's results file is not touched when only these phases run.
 *
 * BENCH_ISSUE3_PROFILE=1 runs mergekv under `node --cpu-prof` (every thread;
 * the profiles stay in a temp dir that is removed, or in BENCH_PROFILE_DIR)
 * and adds to the JSON, per phase, the top functions of each thread during
 * that phase's mergekv run. The profiler slows the server: figures from such
 * a run are for finding where time goes, not for the comparison.
 */
import * as os from "node:os";
import * as path from "node:path";
import { promises as fs } from "node:fs";
import { BenchConfig } from "./config";
import { Cleanup } from "./processes";
import { ServerHandle, startEtcd, startMergekv } from "./servers";
import { log } from "./common";
import { machine } from "./report";
import { monotonicUs, summarizeDir, ThreadProfile } from "./cpu-profile";
import { fmt, issue3Knobs, Issue3Knobs, LoopFigures } from "./issue3-common";
import { runWatch, WatchRun } from "./watch-bench";
import { runLease, LeaseRun } from "./lease-bench";
import { runAuth, AuthRun } from "./auth-bench";
import { runCatchUp, CatchUpRun } from "./catchup-bench";
import { runBulkDelete, BulkDeleteRun } from "./bulk-delete-bench";
import { runTxn, TxnRun, TxnSizeFigures } from "./txn-bench";
import { runFloor, FloorRun, FloorTarget } from "./floor-bench";
import { REPLICATION_LOOPS, ReplicationRun, runReplication } from "./replication-bench";

export type Issue3Phase = "watch" | "floor" | "lease" | "auth" | "catchup" | "bulkdelete" | "txn" | "replication";
const ISSUE3_PHASES: Issue3Phase[] = ["watch", "floor", "lease", "auth", "catchup", "bulkdelete", "txn", "replication"];
/** Run only when BENCH_PHASES names them: `floor` is a measurement of the design, not of mergekv (about 25 min at 3 rounds). */
const OPT_IN_PHASES: Issue3Phase[] = ["floor"];
const RESULTS_PATH = path.join(__dirname, "..", "..", "bench", "results", "issue3-latest.json");

/**
 * Takes this file's phases out of BENCH_PHASES (so the harness's config does
 * not refuse them). `only`: nothing else was asked for, so the harness's own
 * phases must not run.
 */
export function takeIssue3Phases(): { phases: Issue3Phase[]; only: boolean } {
  const raw = process.env.BENCH_PHASES;
  if (!raw) return { phases: ISSUE3_PHASES.filter((p) => !OPT_IN_PHASES.includes(p)), only: false };
  const asked = raw.split(",").map((s) => s.trim()).filter(Boolean);
  const mine = ISSUE3_PHASES.filter((p) => asked.includes(p));
  const rest = asked.filter((p) => !ISSUE3_PHASES.includes(p as Issue3Phase));
  process.env.BENCH_PHASES = rest.join(","); // empty when only these: the harness then runs none of its own
  return { phases: mine, only: mine.length > 0 && rest.length === 0 };
}

interface Verdict { target: string; measured: string; verdict: "met" | "not met" | "not measured" | "info" }

export interface Issue3Results {
  date: string;
  durationS?: number;
  machine: Record<string, unknown>;
  loadAverage: { start: number[]; end: number[]; cores: number; note: string };
  settings: Record<string, unknown>;
  watch?: WatchRun[];
  floor?: FloorRun[];
  lease?: LeaseRun[];
  auth?: AuthRun[];
  catchup?: CatchUpRun[];
  bulkdelete?: BulkDeleteRun[];
  txn?: TxnRun[];
  replication?: ReplicationRun[];
  profile?: Partial<Record<Issue3Phase, ThreadProfile[]>>;
  /** Runs done again because steal took more than BENCH_ISSUE3_STEAL_MAX of the machine. */
  discarded: { phase: Issue3Phase; round: number; system: string; stolenCores: number }[];
  targets: Verdict[];
}

export async function runIssue3(cfg: BenchConfig, cleanup: Cleanup, phases: Issue3Phase[]): Promise<void> {
  const knobs = issue3Knobs();
  const { warmupSeconds: issue3WarmupSeconds, ...otherKnobs } = knobs;
  const started = new Date();
  const load0 = os.loadavg();
  const profiling = process.env.BENCH_ISSUE3_PROFILE === "1";
  const profileDir = profiling ? (process.env.BENCH_PROFILE_DIR ? path.resolve(process.env.BENCH_PROFILE_DIR) : await cleanup.tempDir("bench-issue3-prof-")) : "";
  if (profiling) await fs.mkdir(profileDir, { recursive: true });
  const results: Issue3Results = {
    date: started.toISOString(),
    machine: await machine(),
    loadAverage: { start: load0, end: [], cores: os.availableParallelism(), note: "" },
    settings: { phases, seconds: cfg.seconds, warmupSeconds: cfg.warmupSeconds, loadThreads: cfg.threads, valueBytes: cfg.valueBytes, ...otherKnobs, issue3WarmupSeconds, mergekvArgs: cfg.mergekvArgs, profiling,
      client: "h2 (node:http2, bench/issue3-common.ts and bench/watch-worker.ts)", mergekv: "fsync on (default), default frontends", etcd: "3.4.23, defaults, single member, loopback" },
    discarded: [],
    targets: [],
  };
  const etcd = await startEtcd(cleanup);
  log(`issue 3: etcd ready on ${etcd.endpoint} (pid ${etcd.proc.pid})`);
  const mergekv = await startMergekv(cleanup, { args: cfg.mergekvArgs, ...(profiling ? { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", profileDir] } : {}) });
  log(`issue 3: mergekv ready on ${mergekv.endpoint} (pid ${mergekv.proc.pid}${profiling ? ", under --cpu-prof" : ""})`);
  const windows: Partial<Record<Issue3Phase, { fromUs: number; toUs: number }>> = {};
  /**
   * A phase on etcd then on mergekv, `rounds` times over: alternating spreads
   * the machine's drift over both (on this shared 2-vCPU machine one build
   * measured 260-400 puts/s within minutes). Each server's first run of the
   * phase is preceded by the warm-up (knobs.warmupSeconds of its own load).
   */
  const warmCfg: BenchConfig = { ...cfg, warmupSeconds: Math.max(cfg.warmupSeconds, knobs.warmupSeconds) };
  const stealMax = knobs.stealMaxCentiCores / 100;
  const both = async <T>(phase: Issue3Phase, rounds: number, run: (s: ServerHandle, c: BenchConfig) => Promise<T>, describe: (r: T) => string, stolen?: (r: T) => number): Promise<T[]> => {
    const out: T[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const s of [etcd, mergekv]) {
        for (let attempt = 0; ; attempt++) {
          const c = round === 1 && attempt === 0 ? warmCfg : cfg;
          const fromUs = monotonicUs() + c.warmupSeconds * 1e6;
          const r = await run(s, c);
          if (s === mergekv) windows[phase] = { fromUs, toUs: monotonicUs() };
          const stolenCores = stolen?.(r) ?? 0;
          const again = stolenCores > stealMax && attempt < knobs.stealRetries;
          log(`${phase} ${rounds > 1 ? `round ${round}/${rounds} ` : ""}${s.system.padEnd(7)} ${describe(r)}${again ? `  (steal above ${fmt(stealMax, 2)} cores: run again)` : ""}`);
          if (again) {
            results.discarded.push({ phase, round, system: s.system, stolenCores });
            continue;
          }
          out.push(r);
          break;
        }
      }
    }
    return out;
  };
  try {
    for (const phase of ISSUE3_PHASES.filter((p) => phases.includes(p))) {
      if (phase === "watch") results.watch = await both("watch", knobs.rounds, (s, c) => runWatch(c, knobs, s), watchLine, (r) => r.stolenCores);
      if (phase === "floor") results.floor = await runFloor(cfg, warmCfg, knobs, cleanup, etcd, mergekv, (f) => log(`floor ${f.workload} round ${f.round}/${knobs.rounds} ${f.target.padEnd(9)} ${f.workload === "watch" ? watchLine(f.run) : loopLine(f.run)}`));
      if (phase === "lease") results.lease = await both("lease", knobs.rounds, (s, c) => runLease(c, knobs, s), (r) => `${loopLine(r)}`, (r) => r.stolenCores);
      if (phase === "auth") results.auth = await both("auth", 1, (s) => runAuth(cfg, knobs, s), (r) => `no auth: ${loopLine(r.noAuth)}\n        auth:    ${loopLine(r.auth)}\n        no auth after: ${loopLine(r.noAuthAfter)}`);
      if (phase === "bulkdelete") results.bulkdelete = await both("bulkdelete", 1, (s) => runBulkDelete(knobs, s), (r) => `deleted ${r.deleted} keys in ${fmt(r.deleteMs, 1)} ms; probes' put p99 before ${fmt(r.probeBeforeP99Ms, 1)} ms, during: p99 ${fmt(r.probeDuringP99Ms, 1)} max ${fmt(r.probeDuringMaxMs, 1)} ms (${r.probePutsDuring} puts)`);
      if (phase === "txn") results.txn = await both("txn", 1, (s) => runTxn(s), (r) => r.sizes.map((z) => `${z.keys} keys: p50 ${fmt(z.p50Ms, 2)} ms (first 50 ${fmt(z.firstP50Ms, 2)}, last 50 ${fmt(z.lastP50Ms, 2)}) p99 ${fmt(z.p99Ms, 2)} ms`).join("; "));
      if (phase === "replication") {
        results.replication = await both("replication", 1, (s) => runReplication(cfg, s), (r) => r.loads.map((l) => `${l.internal ? `internal ${l.internal}` : "etcd"}: ${REPLICATION_LOOPS} loops ${fmt(l.concurrent.opsPerSec)} puts/s p50 ${fmt(l.concurrent.p50Ms, 2)} p99 ${fmt(l.concurrent.p99Ms, 2)} ms; one loop p50 ${fmt(l.sequential.p50Ms, 2)} ms`).join("\n        "));
      }
      if (phase === "catchup") results.catchup = await both("catchup", 1, (s) => runCatchUp(cfg, knobs, s), (r) => `created ${fmt(r.createdMs, 1)} ms, caught up ${fmt(r.caughtUpMs, 1)} ms; writer's put before: p99 ${fmt(r.putBeforeP99Ms, 1)} max ${fmt(r.putBeforeMaxMs, 1)} ms, during: p99 ${fmt(r.putDuringP99Ms, 1)} max ${fmt(r.putDuringMaxMs, 1)} ms (${r.putsDuring} puts)`);
    }
  } finally {
    await mergekv.stop();
    await etcd.stop();
    await cleanup.removeDir(etcd.dataDir);
    await cleanup.removeDir(path.dirname(mergekv.dataDir));
  }
  if (profiling) {
    results.profile = {};
    for (const [phase, w] of Object.entries(windows)) results.profile[phase as Issue3Phase] = await summarizeDir(profileDir, 15, w);
  }
  const load1 = os.loadavg();
  results.loadAverage.end = load1;
  const high = Math.max(load0[0], load1[0]) > os.availableParallelism();
  results.loadAverage.note = high ? `HIGH: 1-min load average ${fmt(load0[0], 2)} at start, ${fmt(load1[0], 2)} at end on ${os.availableParallelism()} cores; other processes took CPU during the runs (see otherCores and stolenCores)` : "normal";
  results.targets = verdicts(results);
  results.durationS = (Date.now() - started.getTime()) / 1000;
  print(results);
  const out = process.env.BENCH_ISSUE3_RESULTS || RESULTS_PATH;
  await fs.mkdir(path.dirname(out), { recursive: true });
  await fs.writeFile(out, `${JSON.stringify(results, (_, v) => (v instanceof Float64Array ? undefined : v), 2)}\n`);
  log(`issue 3 results written to ${out}`);
}

function watchLine(r: WatchRun): string {
  return `${fmt(r.eventsPerSec)} events/s (${fmt(r.putsPerSec)} puts/s x ${r.watchers})  ack->event p50 ${fmt(r.p50Ms, 2)} p99 ${fmt(r.p99Ms, 2)} ms  missing ${r.missingEvents}  cores: server ${fmt(r.serverCores, 2)} loadgen ${fmt(r.loadgenCores, 2)} others ${fmt(r.otherCores, 2)} stolen ${fmt(r.stolenCores, 2)}`;
}

function loopLine(r: LoopFigures): string {
  return `${fmt(r.opsPerSec).padStart(6)} ops/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  errors ${r.errors}${r.errors ? ` (${r.errorSamples[0]})` : ""}  cores: server ${fmt(r.serverCores, 2)} loadgen ${fmt(r.loadgenCores, 2)} others ${fmt(r.otherCores, 2)} stolen ${fmt(r.stolenCores, 2)}`;
}

/** A system's median run by `score` (the lower of the middle two when the count is even). */
function pick<T extends { system: string }>(runs: T[] | undefined, system: string, score: (r: T) => number): T | undefined {
  const mine = (runs ?? []).filter((r) => r.system === system).sort((a, b) => score(a) - score(b));
  return mine[Math.floor((mine.length - 1) / 2)];
}

/** Every round's figure per system, as "etcd a, b, c; mergekv x, y, z". */
function spread<T extends { system: string }>(runs: T[], score: (r: T) => number): string {
  return ["etcd", "mergekv"].map((system) => `${system} ${runs.filter((r) => r.system === system).map((r) => fmt(score(r))).join(", ")}`).join("; ");
}

const watchScore = (w: WatchRun) => w.eventsPerSec;
const leaseScore = (l: LeaseRun) => l.opsPerSec;
const authScore = (a: AuthRun) => a.auth.opsPerSec;

function verdicts(r: Issue3Results): Verdict[] {
  const v = (target: string, measured: string, ok: boolean | null, info = false): Verdict => ({ target, measured, verdict: info ? "info" : ok === null ? "not measured" : ok ? "met" : "not met" });
  const out: Verdict[] = [];
  const we = pick(r.watch, "etcd", watchScore);
  const wm = pick(r.watch, "mergekv", watchScore);
  const wOk = !!(we && wm && !wm.writerErrors && !we.writerErrors);
  out.push(we && wm ? v("watch events/s >= 2x etcd", `${fmt(wm.eventsPerSec)} vs ${fmt(we.eventsPerSec)} = ${fmt(wm.eventsPerSec / we.eventsPerSec, 2)}x`, wOk && wm.eventsPerSec >= 2 * we.eventsPerSec) : v("watch events/s >= 2x etcd", "-", null));
  out.push(we && wm ? v("watch delivery p99 <= etcd's", `${fmt(wm.p99Ms, 2)} vs ${fmt(we.p99Ms, 2)} ms = ${fmt(wm.p99Ms / we.p99Ms, 2)}x`, wOk && wm.p99Ms <= we.p99Ms) : v("watch delivery p99 <= etcd's", "-", null));
  const le = pick(r.lease, "etcd", leaseScore);
  const lm = pick(r.lease, "mergekv", leaseScore);
  // The load generator does the same work per op on both servers, so the server's CPU over its CPU
  // compares servers even when the machine's speed moves between runs (docs/benchmarks.md, "Session 12").
  if (le && lm) out.push(v("lease: server CPU per op over the load generator's", `mergekv ${fmt(lm.serverUsPerOp / lm.loadgenUsPerOp, 2)}, etcd ${fmt(le.serverUsPerOp / le.loadgenUsPerOp, 2)}`, null, true));
  out.push(le && lm ? v("lease ops/s >= etcd", `${fmt(lm.opsPerSec)} vs ${fmt(le.opsPerSec)} = ${fmt(lm.opsPerSec / le.opsPerSec, 2)}x`, lm.errors === 0 && lm.opsPerSec >= le.opsPerSec) : v("lease ops/s >= etcd", "-", null));
  const ae = pick(r.auth, "etcd", authScore);
  const am = pick(r.auth, "mergekv", authScore);
  if (ae && am) {
    out.push(v("auth puts/s, mergekv/etcd", `${fmt(am.auth.opsPerSec)} vs ${fmt(ae.auth.opsPerSec)} = ${fmt(am.auth.opsPerSec / ae.auth.opsPerSec, 2)}x`, null, true));
    out.push(v("auth cost (puts/s with auth / mean of the runs without)", `mergekv ${fmt(authRatio(am), 2)}x, etcd ${fmt(authRatio(ae), 2)}x`, null, true));
  }
  const ce = r.catchup?.find((c) => c.system === "etcd");
  const cm = r.catchup?.find((c) => c.system === "mergekv");
  if (ce && cm) out.push(v("longest put while a watch catches up (catchup phase)", `${fmt(cm.putDuringMaxMs, 1)} vs ${fmt(ce.putDuringMaxMs, 1)} ms`, null, true));
  const be = r.bulkdelete?.find((c) => c.system === "etcd");
  const bm = r.bulkdelete?.find((c) => c.system === "mergekv");
  if (be && bm) out.push(v(`deleting ${bm.keys} keys at once, and the longest put meanwhile (bulkdelete phase)`, `${fmt(bm.deleteMs)} vs ${fmt(be.deleteMs)} ms; ${fmt(bm.probeDuringMaxMs)} vs ${fmt(be.probeDuringMaxMs)} ms`, null, true));
  return out;
}

/** Puts/s with auth over the mean of the two runs without (before enabling and after disabling). */
function authRatio(a: AuthRun): number {
  return a.auth.opsPerSec / ((a.noAuth.opsPerSec + a.noAuthAfter.opsPerSec) / 2);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

function roundsNote(r: Issue3Results): string {
  const s = r.settings as { rounds: number; seconds: number; issue3WarmupSeconds: number; stealMaxCentiCores: number; stealRetries: number };
  return `${s.rounds} rounds alternating etcd and mergekv, median run shown; ${s.seconds} s measured per run, the first run on each server after ${s.issue3WarmupSeconds} s of warm-up; a run with steal above ${fmt(s.stealMaxCentiCores / 100, 2)} cores run again, up to ${s.stealRetries} times`;
}

function print(r: Issue3Results): void {
  const out: string[] = [`\nIssue 3: watch, leases and auth, mergekv vs etcd, ${r.date}, load average ${r.loadAverage.start.map((x) => fmt(x, 2)).join(" ")} -> ${r.loadAverage.end.map((x) => fmt(x, 2)).join(" ")} (${r.loadAverage.note}); ${r.discarded.length} run(s) done again for steal${r.discarded.map((d) => ` (${d.phase} ${d.round} ${d.system}: ${fmt(d.stolenCores, 2)})`).join(",")}`];
  const ratio = (m: number | undefined, e: number | undefined) => fmt((m ?? NaN) / (e ?? NaN), 2);
  if (r.watch) {
    const e = pick(r.watch, "etcd", watchScore);
    const m = pick(r.watch, "mergekv", watchScore);
    const row = (name: string, f: (w: WatchRun) => number, d = 0) => [name, fmt(e && f(e), d), fmt(m && f(m), d), ratio(m && f(m), e && f(e))];
    out.push(`\nWatch fan-out (${m?.watchers ?? e?.watchers} watchers on ${m?.streams ?? e?.streams} streams, 1 writer, one put at a time; ${roundsNote(r)}):\nevents/s by round: ${spread(r.watch, watchScore)}\n` + table(["figure", "etcd", "mergekv", "mergekv/etcd"], [
      row("events/s delivered", (w) => w.eventsPerSec), row("writer puts/s", (w) => w.putsPerSec), row("writer put p50 ms", (w) => w.putP50Ms, 2), row("writer put p99 ms", (w) => w.putP99Ms, 2),
      row("ack->event p50 ms", (w) => w.p50Ms, 2), row("ack->event p99 ms", (w) => w.p99Ms, 2), row("send->event p50 ms", (w) => w.sendP50Ms, 2), row("send->event p99 ms", (w) => w.sendP99Ms, 2),
      row("events before ack %", (w) => 100 * w.earlyShare, 1), row("missing events", (w) => w.missingEvents), row("server cores", (w) => w.serverCores, 2), row("loadgen cores", (w) => w.loadgenCores, 2), row("other procs cores", (w) => w.otherCores, 2), row("stolen cores (steal)", (w) => w.stolenCores, 2),
      row("server CPU µs per put", (w) => w.serverUsPerPut), row("loadgen CPU µs per put", (w) => w.loadgenUsPerPut),
      row("server CPU / loadgen CPU, per put", (w) => w.serverUsPerPut / w.loadgenUsPerPut, 2),
    ]));
  }
  const loopRows = (label: string, e?: LoopFigures, m?: LoopFigures) => {
    const row = (name: string, f: (x: LoopFigures) => number, d = 0) => [`${label} ${name}`, fmt(e && f(e), d), fmt(m && f(m), d), ratio(m && f(m), e && f(e))];
    return [row("ops/s", (x) => x.opsPerSec), row("p50 ms", (x) => x.p50Ms, 2), row("p99 ms", (x) => x.p99Ms, 2), row("errors", (x) => x.errors), row("server cores", (x) => x.serverCores, 2), row("loadgen cores", (x) => x.loadgenCores, 2), row("other procs cores", (x) => x.otherCores, 2), row("stolen cores (steal)", (x) => x.stolenCores, 2), row("server CPU µs/op", (x) => x.serverUsPerOp), row("loadgen CPU µs/op", (x) => x.loadgenUsPerOp), row("server CPU / loadgen CPU, per op", (x) => x.serverUsPerOp / x.loadgenUsPerOp, 2)];
  };
  if (r.floor) {
    const targets = [...new Set(r.floor.map((f) => f.target))];
    const intro = `bench/floor-server.ts does only the steps mergekv's design puts on every write, each stage adding one; median of ${String(r.settings.rounds)} rounds`;
    /** One workload's table: every target's median run (by `score`), as a row, with its ratio to etcd's. */
    const section = <T extends { system: string }>(title: string, runsOf: (t: FloorTarget) => T[], score: (x: T) => number, unit: string, header: string[], row: (x: T) => string[]) => {
      const median = (t: FloorTarget) => { const runs = runsOf(t); return runs.length ? pick(runs, runs[0].system, score) : undefined; };
      const etcdRun = median("etcd");
      if (!etcdRun) return;
      out.push(`\n${title} (${intro}):\n${unit} by round: ${targets.map((t) => `${t} ${runsOf(t).map((x) => fmt(score(x))).join(", ")}`).join("; ")}\n` +
        table(["server", unit, "/etcd", ...header], targets.flatMap((t) => {
          const m = median(t);
          return m ? [[t, fmt(score(m)), ratio(score(m), score(etcdRun)), ...row(m)]] : [];
        })));
    };
    section("Watch fan-out floor", (t) => r.floor!.flatMap((f) => (f.workload === "watch" && f.target === t ? [f.run] : [])), watchScore, "events/s",
      ["puts/s", "put p50 ms", "ack->event p99 ms", "server cores", "loadgen cores", "server us/put"],
      (m) => [fmt(m.putsPerSec), fmt(m.putP50Ms, 2), fmt(m.p99Ms, 2), fmt(m.serverCores, 2), fmt(m.loadgenCores, 2), fmt(m.serverUsPerPut)]);
    section("Lease churn floor", (t) => r.floor!.flatMap((f) => (f.workload === "lease" && f.target === t ? [f.run] : [])), leaseScore, "ops/s",
      ["p50 ms", "p99 ms", "grant p50", "put p50", "revoke p50", "server cores", "server us/op"],
      (m) => [fmt(m.p50Ms, 2), fmt(m.p99Ms, 2), fmt(m.grantP50Ms, 2), fmt(m.putP50Ms, 2), fmt(m.revokeP50Ms, 2), fmt(m.serverCores, 2), fmt(m.serverUsPerOp)]);
  }
  if (r.lease) {
    const e = pick(r.lease, "etcd", leaseScore);
    const m = pick(r.lease, "mergekv", leaseScore);
    const call = (name: string, f: (x: LeaseRun) => number) => [`lease ${name} p50 ms`, fmt(e && f(e), 2), fmt(m && f(m), 2), ratio(m && f(m), e && f(e))];
    out.push(`\nLease churn (${r.lease[0].loops} loops; 1 op = grant TTL 60 + put with the lease + revoke; ${roundsNote(r)}):\nops/s by round: ${spread(r.lease, leaseScore)}\n` + table(["figure", "etcd", "mergekv", "mergekv/etcd"], [
      ...loopRows("lease", e, m), call("grant", (x) => x.grantP50Ms), call("put", (x) => x.putP50Ms), call("revoke", (x) => x.revokeP50Ms),
    ]));
  }
  if (r.auth) {
    const e = pick(r.auth, "etcd", authScore);
    const m = pick(r.auth, "mergekv", authScore);
    out.push(`\nPuts with and without auth (${r.auth[0].clients} concurrent, ${String(r.settings.valueBytes)} B values, token metadata):\n` + table(["figure", "etcd", "mergekv", "mergekv/etcd"], [
      ...loopRows("no auth", e?.noAuth, m?.noAuth), ...loopRows("auth", e?.auth, m?.auth), ...loopRows("no auth after", e?.noAuthAfter, m?.noAuthAfter),
      ["auth / mean no-auth puts/s", fmt(e && authRatio(e), 2), fmt(m && authRatio(m), 2), ""],
    ]));
  }
  if (r.catchup) {
    const e = r.catchup.find((c) => c.system === "etcd");
    const m = r.catchup.find((c) => c.system === "mergekv");
    const row = (name: string, f: (c: CatchUpRun) => number, d = 1) => [name, fmt(e && f(e), d), fmt(m && f(m), d), ratio(m && f(m), e && f(e))];
    const c = m ?? e!;
    out.push(`\nWatch catch-up (a prefix of ${c.keys} keys, watched from ${c.revisionsBehind} revisions back, none of them in the prefix; one writer, one put at a time):\n` + table(["figure", "etcd", "mergekv", "mergekv/etcd"], [
      row("watch created, ms", (x) => x.createdMs), row("caught up (a new put received), ms", (x) => x.caughtUpMs),
      row("writer put p99 before, ms", (x) => x.putBeforeP99Ms), row("writer put max before, ms", (x) => x.putBeforeMaxMs),
      row("writer put p99 during, ms", (x) => x.putDuringP99Ms), row("writer put max during, ms", (x) => x.putDuringMaxMs), row("writer puts during", (x) => x.putsDuring, 0),
    ]));
  }
  if (r.bulkdelete) {
    const e = r.bulkdelete.find((c) => c.system === "etcd");
    const m = r.bulkdelete.find((c) => c.system === "mergekv");
    const row = (name: string, f: (c: BulkDeleteRun) => number, d = 1) => [name, fmt(e && f(e), d), fmt(m && f(m), d), ratio(m && f(m), e && f(e))];
    out.push(`\nBulk delete (one DeleteRange of ${(m ?? e!).keys} keys of 1 KiB, while 8 writers each put their own key, one value at a time):\n` + table(["figure", "etcd", "mergekv", "mergekv/etcd"], [
      row("delete took, ms", (x) => x.deleteMs), row("probe put p99 before, ms", (x) => x.probeBeforeP99Ms),
      row("probe put p99 during, ms", (x) => x.probeDuringP99Ms), row("probe put max during, ms", (x) => x.probeDuringMaxMs), row("probe puts during", (x) => x.probePutsDuring, 0),
    ]));
  }
  if (r.txn) {
    const e = r.txn.find((c) => c.system === "etcd");
    const m = r.txn.find((c) => c.system === "mergekv");
    const rows = (m ?? e!).sizes.flatMap((z, i) => {
      const row = (name: string, f: (x: TxnSizeFigures) => number) => [`${z.keys}-key Txn ${name}, ms`, fmt(e && f(e.sizes[i]), 2), fmt(m && f(m.sizes[i]), 2), ratio(m && f(m.sizes[i]), e && f(e.sizes[i]))];
      return [row("p50", (x) => x.p50Ms), row("p99", (x) => x.p99Ms), row("p50, first 50 rounds", (x) => x.firstP50Ms), row("p50, last 50 rounds", (x) => x.lastP50Ms)];
    });
    out.push(`\nMulti-key Txns, one at a time (each size ${(m ?? e!).sizes[0].rounds} times on the same keys, after 50 unmeasured):\n` + table(["figure", "etcd", "mergekv", "mergekv/etcd"], rows));
  }
  if (r.replication) {
    const e = r.replication.find((c) => c.system === "etcd")?.loads[0];
    const m = r.replication.find((c) => c.system === "mergekv");
    const rows = (m?.loads ?? []).map((l) => [
      `${l.internal} of ${m!.frontends}`, fmt(l.concurrent.opsPerSec), ratio(l.concurrent.opsPerSec, e?.concurrent.opsPerSec), fmt(l.concurrent.p50Ms, 2), fmt(l.concurrent.p99Ms, 2), fmt(l.sequential.p50Ms, 2), fmt(l.sequential.p99Ms, 2),
    ]);
    if (e) rows.push(["etcd", fmt(e.concurrent.opsPerSec), "1.00", fmt(e.concurrent.p50Ms, 2), fmt(e.concurrent.p99Ms, 2), fmt(e.sequential.p50Ms, 2), fmt(e.sequential.p99Ms, 2)]);
    out.push(`\nInternal replication (mergekv's factor set online at each value; puts to 1,000 keys, ${REPLICATION_LOOPS} loops, then one loop; etcd has no such factor):\n` +
      table(["internal replication", "puts/s", "/etcd", "p50 ms", "p99 ms", "one loop p50 ms", "one loop p99 ms"], rows));
  }
  if (r.profile) {
    for (const [phase, threads] of Object.entries(r.profile)) {
      for (const t of threads ?? []) {
        if (t.busyMs < 100) continue;
        out.push(`\nprofile ${phase}, mergekv ${t.thread}: busy ${fmt(t.busyMs)} ms, idle ${fmt(t.idleMs)} ms; top self: ${t.top.slice(0, 8).map((f) => `${f.name} ${f.percent}%`).join(", ")}` +
          `\n  inclusive (mergekv): ${t.mergekvInclusive.slice(0, 8).map((f) => `${f.name} ${f.percent}%`).join(", ")}`);
      }
    }
  }
  out.push("\nTargets (issue 3):\n" + table(["target", "measured", "verdict"], r.targets.map((t) => [t.target, t.measured, t.verdict])));
  process.stdout.write(`${out.join("\n")}\n`);
}
