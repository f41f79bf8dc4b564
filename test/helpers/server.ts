/**
 * Starts the real mergekv server (the built CLI, `dist/`) as a child process
 * on a free loopback port with its own data directory.
 */
import { spawn, ChildProcess } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { promises as fs } from "node:fs";
import { freePort } from "../../bench/processes";
import { SERVER_NODE_FLAGS } from "../../src/node-flags";

const CLI = path.join(__dirname, "..", "..", "bin", "mergekv.js");

/** One loopback port finder for the benchmark and the tests. */
export { freePort };

export async function tempDir(prefix = "mergekv-test-"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export interface RunningServer {
  port: number;
  endpoint: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything the server wrote to stderr and stdout so far. */
  output(): string;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** Send a signal (SIGKILL for crash tests) and wait for exit. */
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  dataDir?: string;
  port?: number;
  args?: string[];
  /** ms to wait for "serving client requests" */
  timeoutMs?: number;
  /** Node's flags (default SERVER_NODE_FLAGS, what bin/mergekv.js's shebang gives). */
  nodeFlags?: string[];
  /** Run bin/mergekv.js as an executable (its shebang starts node), not through process.execPath. */
  direct?: boolean;
  /** More environment variables for the server (ETCD_* ones set flags, as etcd reads them). */
  env?: NodeJS.ProcessEnv;
  /** Give the data directory and client URL as ETCD_DATA_DIR and ETCD_LISTEN_CLIENT_URLS instead of flags. */
  viaEnvironment?: boolean;
}

export async function startServer(o: StartOptions = {}): Promise<RunningServer> {
  const dataDir = o.dataDir ?? (await tempDir());
  const port = o.port ?? (await freePort());
  const endpoint = `127.0.0.1:${port}`;
  const placed = { ETCD_DATA_DIR: dataDir, ETCD_LISTEN_CLIENT_URLS: `http://${endpoint}` };
  const serveArgs = ["serve", ...(o.viaEnvironment ? [] : ["--data-dir", dataDir, "--listen-client-urls", `http://${endpoint}`]), ...(o.args ?? [])];
  const [command, args] = o.direct ? [CLI, serveArgs] : [process.execPath, [...(o.nodeFlags ?? SERVER_NODE_FLAGS), CLI, ...serveArgs]];
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...(o.viaEnvironment ? placed : {}), ...o.env },
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${out}`)), o.timeoutMs ?? 30_000);
    const check = () => {
      if (out.includes("serving client requests")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", check);
    child.stderr!.on("data", check);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with code ${code} before serving:\n${out}`));
    });
  });
  return {
    port,
    endpoint,
    dataDir,
    child,
    output: () => out,
    stop: () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
    kill: (signal) => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
