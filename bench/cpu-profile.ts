/**
 * Reads V8 .cpuprofile files (node --cpu-prof) and sums self time per
 * function and per package, so a profile can be read in a table.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
  /** Share of the thread's busy (non-idle) time. */
  percent: number;
}

export interface ThreadProfile {
  file: string;
  /** "main" or "worker N" (from the file name's thread id). */
  thread: string;
  busyMs: number;
  idleMs: number;
  top: SelfTime[];
  byPackage: SelfTime[];
  /** Inclusive time of mergekv's own functions (dist/src): where its time goes, callees included. */
  mergekvInclusive: SelfTime[];
}

const IDLE = new Set(["(idle)", "(program)"]);

/** Which package a script URL belongs to: node_modules/<pkg>, node: internals, or the project's own dirs. */
function packageOf(url: string): string {
  if (!url) return "(native/V8)";
  if (url.startsWith("node:")) return "node internals";
  if (url.startsWith("wasm://")) return "wasm";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const dist = url.indexOf("/dist/");
  if (dist >= 0) return `mergekv ${url.slice(dist + 6).split("/").slice(0, 2).join("/")}`;
  return url;
}

/** Rust symbols from the wasm carry crate hashes and long generic arguments: keep the readable part. */
const NAME_CHARS_MAX = 140;
function readableName(name: string): string {
  const clean = name.replace(/\[[0-9a-f]{16}\]/g, "");
  return clean.length > NAME_CHARS_MAX ? `${clean.slice(0, NAME_CHARS_MAX)}…` : clean;
}

function shortWhere(url: string, line: number): string {
  const parts = url.replace(/^file:\/\//, "").split("/");
  return `${parts.slice(-2).join("/")}:${line + 1}`;
}

/** A time window on the monotonic clock V8 stamps profiles with (µs; what process.hrtime reads too). */
export interface Window {
  fromUs: number;
  toUs: number;
}

export function summarizeProfile(file: string, profile: CpuProfile, topN: number, window?: Window): ThreadProfile {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window && (t < window.fromUs || t >= window.toUs)) continue;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + delta);
  }
  const fns = new Map<string, SelfTime>();
  const pkgs = new Map<string, SelfTime>();
  let busyUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    const name = readableName(cf.functionName || "(anonymous)");
    if (IDLE.has(name)) { idleUs += us; continue; }
    busyUs += us;
    const where = cf.url ? shortWhere(cf.url, cf.lineNumber) : "";
    const key = `${name} ${where}`;
    const f = fns.get(key) ?? { name, where, ms: 0, percent: 0 };
    f.ms += us / 1000;
    fns.set(key, f);
    const pkgName = name === "(garbage collector)" ? "(garbage collector)" : packageOf(cf.url);
    const p = pkgs.get(pkgName) ?? { name: pkgName, where: "", ms: 0, percent: 0 };
    p.ms += us / 1000;
    pkgs.set(pkgName, p);
  }
  const inclusive = mergekvInclusive(profile, byId, selfUs);
  const ranked = (m: Map<string, SelfTime>) => [...m.values()]
    .map((t) => ({ ...t, ms: +t.ms.toFixed(1), percent: +((100 * t.ms * 1000) / Math.max(1, busyUs)).toFixed(1) }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, topN);
  const tid = /\.\d+\.(\d+)\.\d+\.cpuprofile$/.exec(file)?.[1];
  return { file: path.basename(file), thread: tid === undefined || tid === "0" ? "main" : `worker ${tid}`, busyMs: busyUs / 1000, idleMs: idleUs / 1000, top: ranked(fns), byPackage: ranked(pkgs), mergekvInclusive: ranked(inclusive) };
}

/** Credits each sample's time to every distinct mergekv function on its stack. */
function mergekvInclusive(profile: CpuProfile, byId: Map<number, ProfileNode>, selfUs: Map<number, number>): Map<string, SelfTime> {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<string, SelfTime>();
  for (const [id, us] of selfUs) {
    if (IDLE.has(byId.get(id)!.callFrame.functionName)) continue;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const cf = byId.get(at)!.callFrame;
      if (!cf.url.includes("/dist/src/")) continue;
      const key = `${cf.functionName || "(anonymous)"} ${shortWhere(cf.url, cf.lineNumber)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const f = out.get(key) ?? { name: cf.functionName || "(anonymous)", where: shortWhere(cf.url, cf.lineNumber), ms: 0, percent: 0 };
      f.ms += us / 1000;
      out.set(key, f);
    }
  }
  return out;
}

/** Every profile in `dir`, each summarized over `window` (all of it when absent). */
export async function summarizeDir(dir: string, topN: number, window?: Window): Promise<ThreadProfile[]> {
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith(".cpuprofile")).sort();
  const out: ThreadProfile[] = [];
  for (const f of files) out.push(summarizeProfile(f, JSON.parse(await fs.readFile(path.join(dir, f), "utf8")) as CpuProfile, topN, window));
  return out;
}

/** The monotonic clock the profiles use, in µs. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
