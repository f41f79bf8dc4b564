import { execFile } from "node:child_process";

export interface CmdResult { code: number; stdout: string; stderr: string }

/** Runs a command and resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(cmd: string, args: string[], input?: string, timeoutMs = 60_000): Promise<CmdResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, ETCDCTL_API: "3" }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === "number" ? ((err as unknown as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** A hung etcdctl fails the test rather than the whole run. */
export const ETCDCTL_TIMEOUT_MS = 20_000;

/**
 * Runs etcdctl against a server, with the flags that reach it (`etcdctlArgs`:
 * --endpoints, and TLS flags) before `args`. Resolves with the exit code and
 * output; rejects only if etcdctl could not run or hung.
 */
export function etcdctlOn(server: { etcdctlArgs: string[] }, args: string[], input?: string): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = execFile("etcdctl", [...server.etcdctlArgs, ...args], { env: { ...process.env, ETCDCTL_API: "3" }, timeout: ETCDCTL_TIMEOUT_MS }, (e, stdout, stderr) => {
      if (e && typeof e.code !== "number") return reject(e);
      resolve({ code: e ? (e.code as number) : 0, stdout, stderr });
    });
    child.stdin!.end(input ?? "");
  });
}

/** Runs etcdctl against a server and expects it to succeed (exit 0, no stderr); returns stdout. */
export async function etcdctlOk(server: { etcdctlArgs: string[] }, ...args: string[]): Promise<string> {
  const r = await etcdctlOn(server, args);
  expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" });
  return r.stdout;
}
