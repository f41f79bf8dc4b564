/**
 * Child processes and temporary directories the benchmark owns, and the one
 * registry that removes them all, whatever way the run ends.
 */
import { spawn, execFileSync, ChildProcess } from "node:child_process";
import { promises as fs, readFileSync, readdirSync, rmSync } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** Lines of a child's output kept in full (older ones dropped, lines naming recovery or readiness always kept). */
const OUTPUT_LINES_MAX = 400;
const KEEP_LINE = /recover|serving|ready to serve|snapshot|compaction|error|fatal|WARNING/i;
/** How long a graceful stop may take before SIGKILL. */
export const STOP_TIMEOUT_MS = 60_000;

export class Cleanup {
  private readonly children = new Set<ChildProcess>();
  private readonly dirs = new Set<string>();

  track(child: ChildProcess): void {
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
  }

  async tempDir(prefix: string): Promise<string> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    this.dirs.add(dir);
    return dir;
  }

  async removeDir(dir: string): Promise<void> {
    await fs.rm(dir, { recursive: true, force: true });
    this.dirs.delete(dir);
  }

  /** Graceful: SIGTERM every child we started, SIGKILL what is left, then remove every temp dir. */
  async all(): Promise<void> {
    await Promise.all([...this.children].map((c) => stopChild(c, "SIGTERM", 10_000)));
    for (const dir of this.dirs) await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    this.dirs.clear();
  }

  /** Last resort from an exit handler: synchronous, no waiting. */
  allSync(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
    this.dirs.clear();
  }
}

/** Sends `signal`, waits for the exit, SIGKILLs after `timeoutMs`. Resolves to how long it took. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<number> {
  const started = Date.now();
  if (child.exitCode !== null || child.signalCode !== null) return 0;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
  return Date.now() - started;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Started {
  child: ChildProcess;
  pid: number;
  /** Wall-clock ms from spawn to the ready line. */
  readyMs: number;
  /** Kept lines of stdout and stderr. */
  output(): string;
}

/** Spawns a command and waits until its output matches `ready`. */
export async function startProcess(cleanup: Cleanup, cmd: string, args: string[], ready: RegExp, timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<Started> {
  const started = performance.now();
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env });
  cleanup.track(child);
  const lines: string[] = [];
  let partial = "";
  let isReady = false;
  let onLine: (line: string) => void = () => undefined;
  const take = (chunk: Buffer) => {
    const parts = (partial + chunk.toString("utf8")).split("\n");
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      if (lines.length > OUTPUT_LINES_MAX) {
        const drop = lines.findIndex((l) => !KEEP_LINE.test(l));
        lines.splice(drop < 0 ? 0 : drop, 1);
      }
      onLine(line);
    }
  };
  child.stdout!.on("data", take);
  child.stderr!.on("data", take);
  const output = () => lines.join("\n") + (partial ? `\n${partial}` : "");
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} not ready after ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    onLine = (line) => {
      if (!isReady && ready.test(line)) {
        isReady = true;
        clearTimeout(timer);
        resolve();
      }
    };
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (!isReady) reject(new Error(`${cmd} exited (${code ?? signal}) before it was ready:\n${output()}`));
    });
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  onLine = () => undefined;
  return { child, pid: child.pid!, readyMs: performance.now() - started, output };
}

let clockTicks = 0;
function ticksPerSecond(): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** pid and every descendant (from /proc). */
function processTree(root: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // the process ended while we looked
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parents) if (ppid === out[i]) out.push(pid);
  return out;
}

function statusField(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resident bytes of the process and its descendants (threads share their process's figure). */
export function rssBytes(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + statusField(p, "VmRSS"), 0);
}

/** Peak resident bytes (VmHWM) of the process and its descendants. */
export function peakRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + statusField(p, "VmHWM"), 0);
}

/** CPU seconds (user + system, all threads) the process and its descendants have used so far. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      // ended
    }
  }
  return ticks / ticksPerSecond();
}

/**
 * The whole machine's CPU over a run (all cores, from /proc/stat), to tell
 * the noise apart: what other processes used, and what the hypervisor gave
 * other guests while this VM had work (steal). Both take CPU from the run.
 */
export class MachineMeter {
  private readonly start = machineSeconds();

  /** `measuredS`: CPU seconds of the processes the run measures (server, load generator); `wallS`: the run's length. */
  cores(measuredS: number, wallS: number): { otherCores: number; stolenCores: number } {
    const end = machineSeconds();
    return {
      otherCores: Math.max(0, end.busy - this.start.busy - measuredS) / wallS,
      stolenCores: (end.steal - this.start.steal) / wallS,
    };
  }
}

/** Busy CPU seconds of the machine so far, and seconds stolen from it. */
function machineSeconds(): { busy: number; steal: number } {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields;
    return { busy: (user + nice + system + irq + softirq) / ticksPerSecond(), steal: (steal ?? 0) / ticksPerSecond() };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}
