/**
 * Client programs of checks (test/go-client, test/python-client): each
 * prints "ok NAME" or "FAIL NAME: reason" per check and exits 1 if any
 * failed. Run one, and assert that every check it lists passed.
 */
import { execFile } from "node:child_process";

export interface Ran { code: number | null; stdout: string; stderr: string }

/** Runs a program to its end; a non-zero exit resolves (its code is part of the answer), a program that cannot start rejects. */
export function exec(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: options.cwd, env: options.env, timeout: options.timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (e, stdout, stderr) => {
      if (e && typeof e.code !== "number") return reject(new Error(`${file} ${args.join(" ")}: ${e.message}\n${stderr}`));
      resolve({ code: e ? (e.code as number) : 0, stdout, stderr });
    });
  });
}

/** Every listed check printed "ok", and the program exited 0. */
export function expectEveryCheckPassed(names: string[], ran: Ran): void {
  const lines = ran.stdout.trim().split("\n");
  const failed = lines.filter((l) => !l.startsWith("ok "));
  const passed = lines.filter((l) => l.startsWith("ok ")).map((l) => l.split(" ")[1]);
  // The failing lines are the diff; stderr (the clients' own logs) only if the program itself broke.
  expect({ failed, missing: names.filter((n) => !passed.includes(n)) }).toEqual({ failed: [], missing: [] });
  expect({ code: ran.code, stderr: ran.code === 0 ? "" : ran.stderr.slice(-4000) }).toEqual({ code: 0, stderr: "" });
}
