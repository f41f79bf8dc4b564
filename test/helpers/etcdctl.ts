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
