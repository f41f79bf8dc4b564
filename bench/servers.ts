/**
 * The servers under test, each a child process on loopback with its own
 * temporary data directory: a real etcd, mergekv, and a no-op gRPC server
 * that measures the load generator's own ceiling.
 */
import * as path from "node:path";
import { Cleanup, Started, freePort, startProcess, stopChild, STOP_TIMEOUT_MS } from "./processes";
import { SERVER_NODE_FLAGS } from "../src/node-flags";

export type SystemName = "etcd" | "mergekv" | "noop" | "floor";

export interface ServerHandle {
  system: SystemName;
  endpoint: string;
  dataDir: string;
  proc: Started;
  /** SIGTERM (or `signal`), wait for exit; resolves to ms taken. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

const REPO = path.join(__dirname, "..", "..");
export const MERGEKV_CLI = path.join(REPO, "bin", "mergekv.js");
const NOOP_SERVER = path.join(__dirname, "noop-server.js");
/** The built floor server (from the tests, which run this file from source, too). */
const FLOOR_SERVER = __filename.endsWith(".ts") ? path.join(__dirname, "..", "dist", "bench", "floor-server.js") : path.join(__dirname, "floor-server.js");
/** A cold start of a big data dir may take long; past this the run fails rather than hangs. */
const START_TIMEOUT_MS = 300_000;

function handle(system: SystemName, endpoint: string, dataDir: string, proc: Started): ServerHandle {
  return { system, endpoint, dataDir, proc, stop: (signal = "SIGTERM") => stopChild(proc.child, signal, STOP_TIMEOUT_MS) };
}

export async function startEtcd(cleanup: Cleanup): Promise<ServerHandle> {
  const dir = await cleanup.tempDir("bench-etcd-");
  const client = await freePort();
  const peer = await freePort();
  const clientUrl = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const proc = await startProcess(cleanup, "etcd", [
    "--name", "bench",
    "--data-dir", path.join(dir, "data"),
    "--listen-client-urls", clientUrl,
    "--advertise-client-urls", clientUrl,
    "--listen-peer-urls", peerUrl,
    "--initial-advertise-peer-urls", peerUrl,
    "--initial-cluster", `bench=${peerUrl}`,
    "--initial-cluster-state", "new",
  ], /ready to serve client requests/, START_TIMEOUT_MS);
  return handle("etcd", `127.0.0.1:${client}`, dir, proc);
}

export interface MergekvStart {
  /** Reuse a data dir (restart); default: a fresh temporary one. */
  dataDir?: string;
  args?: string[];
  /** More flags for node itself (e.g. --cpu-prof), after the server's own (SERVER_NODE_FLAGS). */
  nodeArgs?: string[];
  /** How long recovery may take (default START_TIMEOUT_MS). */
  timeoutMs?: number;
}

export async function startMergekv(cleanup: Cleanup, o: MergekvStart = {}): Promise<ServerHandle> {
  const dataDir = o.dataDir ?? path.join(await cleanup.tempDir("bench-mergekv-"), "data");
  const port = await freePort();
  const endpoint = `127.0.0.1:${port}`;
  const proc = await startProcess(cleanup, process.execPath, [
    ...SERVER_NODE_FLAGS, ...(o.nodeArgs ?? []), MERGEKV_CLI, "serve", "--data-dir", dataDir, "--listen-client-urls", `http://${endpoint}`, ...(o.args ?? []),
  ], /serving client requests on/, o.timeoutMs ?? START_TIMEOUT_MS);
  return handle("mergekv", endpoint, dataDir, proc);
}

export async function startNoop(cleanup: Cleanup): Promise<ServerHandle> {
  const port = await freePort();
  const proc = await startProcess(cleanup, process.execPath, [NOOP_SERVER, String(port)], /serving client requests on/, 30_000);
  return handle("noop", `127.0.0.1:${port}`, "", proc);
}

/** bench/floor-server.ts at `stage`, with the server's node flags, in a temporary directory of its own. */
export async function startFloor(cleanup: Cleanup, stage: string): Promise<ServerHandle> {
  const dir = await cleanup.tempDir(`bench-floor-${stage}-`);
  const port = await freePort();
  const proc = await startProcess(cleanup, process.execPath, [...SERVER_NODE_FLAGS, FLOOR_SERVER, String(port), stage, dir], /serving client requests on/, 30_000);
  return handle("floor", `127.0.0.1:${port}`, dir, proc);
}

/** mergekv's own startup figures, parsed from its log. */
export interface MergekvStartup {
  recoveredRevision: number;
  keys: number;
  startedMs: number;
  changeRecords: number;
  buckets: number;
  keyHistories: number;
}

export function parseMergekvStartup(output: string): MergekvStartup | null {
  const m = /recovered revision (\d+) \((\d+) keys\) and started \d+ frontends in (\d+) ms/.exec(output);
  if (!m) return null;
  const read = (what: string) => Number(new RegExp(`recovery: read (\\d+) ${what}`).exec(output)?.[1] ?? NaN);
  return {
    recoveredRevision: Number(m[1]),
    keys: Number(m[2]),
    startedMs: Number(m[3]),
    changeRecords: read("change records"),
    buckets: read("buckets"),
    keyHistories: read("key histories"),
  };
}
