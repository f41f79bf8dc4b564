/**
 * The servers an integration suite runs against: mergekv (the built server,
 * as a child process) and, as the reference, a real etcd 3.4 on loopback.
 * Every suite runs the same assertions against both, so an assertion that
 * etcd itself fails is a wrong test, not a mergekv bug.
 */
import { promises as fs } from "node:fs";
import { startServer } from "./server";
import { startEtcd } from "./etcd";

export interface Target {
  endpoint: string;
  /** true for mergekv, false for the reference etcd. */
  mergekv: boolean;
  /** Stops the server, removes its data, and fails if mergekv did not exit cleanly or logged an internal error. */
  stop(): Promise<void>;
}

export type TargetName = "mergekv" | "etcd";

export const TARGETS: TargetName[] = ["mergekv", "etcd"];

export async function startTarget(name: TargetName): Promise<Target> {
  if (name === "etcd") {
    const etcd = await startEtcd();
    return { endpoint: etcd.endpoint, mergekv: false, stop: async () => void (await etcd.stop()) };
  }
  const server = await startServer();
  return {
    endpoint: server.endpoint,
    mergekv: true,
    stop: async () => {
      const code = await server.stop();
      await fs.rm(server.dataDir, { recursive: true, force: true });
      const out = server.output();
      if (code !== 0) throw new Error(`mergekv exited with code ${code}:\n${out}`);
      if (/internal error/i.test(out)) throw new Error(`mergekv logged an internal error:\n${out}`);
    },
  };
}
