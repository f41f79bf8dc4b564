/**
 * Starts a REAL etcd (the `etcd` binary, 3.4.x) on loopback with its own
 * temporary data directory, so that tests can check mergekv's answers against
 * etcd's own.
 */
import { spawn, ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import { freePort, tempDir } from "./server";

export interface RunningEtcd {
  endpoint: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  child: ChildProcess;
  output(): string;
  /** SIGTERM, wait for exit, and remove the data directory unless `keepData` (to start again on it). */
  stop(keepData?: boolean): Promise<number | null>;
}

/** Given all three, etcd starts again on the data and ports of an earlier run. */
export interface EtcdOptions {
  dataDir?: string;
  clientPort?: number;
  peerPort?: number;
  /** More flags, e.g. --auth-token. */
  args?: string[];
}

/** etcd's start-up on these machines takes about 1 s; allow for a loaded machine. */
const ETCD_START_MS_MAX = 30_000;

export async function startEtcd(o: EtcdOptions = {}): Promise<RunningEtcd> {
  const dataDir = o.dataDir ?? (await tempDir("mergekv-real-etcd-"));
  const clientPort = o.clientPort ?? (await freePort());
  let peerPort = o.peerPort ?? (await freePort());
  while (peerPort === clientPort) peerPort = await freePort();
  const endpoint = `127.0.0.1:${clientPort}`;
  const child = spawn("etcd", [
    "--name", "default",
    "--data-dir", dataDir,
    "--listen-client-urls", `http://${endpoint}`,
    "--advertise-client-urls", `http://${endpoint}`,
    "--listen-peer-urls", `http://127.0.0.1:${peerPort}`,
    "--initial-advertise-peer-urls", `http://127.0.0.1:${peerPort}`,
    "--initial-cluster", `default=http://127.0.0.1:${peerPort}`,
    ...(o.args ?? []),
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`etcd did not start in time:\n${out}`)), ETCD_START_MS_MAX);
    const check = () => {
      if (out.includes("ready to serve client requests")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", check);
    child.stderr!.on("data", check);
    child.on("error", (e) => { clearTimeout(timer); reject(e); });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`etcd exited with code ${code} before serving:\n${out}`));
    });
  });
  return {
    endpoint,
    dataDir,
    clientPort,
    peerPort,
    child,
    output: () => out,
    stop: async (keepData = false) => {
      if (child.exitCode === null) child.kill("SIGTERM");
      const code = await exited;
      if (!keepData) await fs.rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
