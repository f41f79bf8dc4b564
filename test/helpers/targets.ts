/**
 * The servers an integration suite runs against: mergekv (the built server,
 * as a child process) and, as the reference, a real etcd 3.4 on loopback.
 * Every suite runs the same assertions against both, so an assertion that
 * etcd itself fails is a wrong test, not a mergekv bug. "mergekv-tls" is
 * mergekv on https:// with client certificates required, for suites that
 * must hold with TLS and without.
 */
import { promises as fs } from "node:fs";
import { freePort, RunningServer, startServer, tempDir } from "./server";
import { RunningEtcd, startEtcd } from "./etcd";
import { makeCerts, TestCerts } from "./tls";

export interface Target {
  /** host:port, what gRPC clients dial. */
  endpoint: string;
  /** The client URL the server advertises (member list): http://host:port, or https:// over TLS. */
  clientUrl: string;
  /** What etcdctl is given as --endpoints, and echoes back in its output. */
  ctlEndpoint: string;
  /** etcdctl's flags to reach the server: --endpoints, and over TLS --cacert, --cert, --key. */
  etcdctlArgs: string[];
  /** true for mergekv, false for the reference etcd. */
  mergekv: boolean;
  /** The CA and client certificate, when the server speaks TLS. */
  tls?: TestCerts;
  /** Stops the server and starts it again on the same port and data (in-memory state such as auth tokens is lost). */
  restart(): Promise<void>;
  /** Stops the server, removes its data, and fails if mergekv did not exit cleanly or logged an internal error. */
  stop(): Promise<void>;
}

export type TargetName = "mergekv" | "etcd" | "mergekv-tls";

export const TARGETS: TargetName[] = ["mergekv", "etcd"];

/** `args`: more flags, given to either server as they are (etcd and mergekv share the ones tested). */
export async function startTarget(name: TargetName, args: string[] = []): Promise<Target> {
  if (name === "etcd") return startEtcdTarget(args);
  if (name === "mergekv") return startMergekvTarget(args);
  const certs = await makeCerts(await tempDir("mergekv-tls-"));
  return startMergekvTarget(args, certs);
}

async function startEtcdTarget(args: string[]): Promise<Target> {
  let etcd: RunningEtcd = await startEtcd({ args });
  return {
    endpoint: etcd.endpoint,
    clientUrl: `http://${etcd.endpoint}`,
    ctlEndpoint: etcd.endpoint,
    etcdctlArgs: ["--endpoints", etcd.endpoint],
    mergekv: false,
    restart: async () => {
      await etcd.stop(true);
      etcd = await startEtcd({ dataDir: etcd.dataDir, clientPort: etcd.clientPort, peerPort: etcd.peerPort, args });
    },
    stop: async () => void (await etcd.stop()),
  };
}

async function startMergekvTarget(extraArgs: string[], tls?: TestCerts): Promise<Target> {
  const port = await freePort();
  const endpoint = `127.0.0.1:${port}`;
  const tlsArgs = tls
    ? ["--listen-client-urls", `https://${endpoint}`, "--cert-file", tls.serverCert, "--key-file", tls.serverKey, "--trusted-ca-file", tls.ca, "--client-cert-auth"]
    : [];
  const args = [...tlsArgs, ...extraArgs];
  let server: RunningServer = await startServer({ port, args });
  /** Stops the running server; fails if it did not exit cleanly or logged an internal error. */
  const stopChecked = async () => {
    const code = await server.stop();
    const out = server.output();
    if (code !== 0) throw new Error(`mergekv exited with code ${code}:\n${out}`);
    if (/internal error/i.test(out)) throw new Error(`mergekv logged an internal error:\n${out}`);
  };
  const clientUrl = `${tls ? "https" : "http"}://${endpoint}`;
  const ctlEndpoint = tls ? clientUrl : endpoint;
  return {
    endpoint,
    clientUrl,
    ctlEndpoint,
    etcdctlArgs: ["--endpoints", ctlEndpoint, ...(tls ? ["--cacert", tls.ca, "--cert", tls.clientCert, "--key", tls.clientKey] : [])],
    mergekv: true,
    tls,
    restart: async () => {
      await stopChecked();
      server = await startServer({ dataDir: server.dataDir, port, args });
    },
    stop: async () => {
      try {
        await stopChecked();
      } finally {
        await fs.rm(server.dataDir, { recursive: true, force: true });
        if (tls) await fs.rm(tls.dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * For the enclosing describe block: starts `name` (with `args`, read when it
 * starts: they may name files made in an earlier beforeAll) before its tests
 * and a client on it made by `connect`, hands both to `use`, and closes the
 * client and stops the server after the tests.
 */
export function serveSuite<C extends { close(): void }>(
  name: TargetName,
  connect: (target: Target) => C,
  use: (target: Target, client: C) => void,
  args: () => string[] = () => [],
): void {
  let target: Target | undefined;
  let client: C | undefined;
  beforeAll(async () => {
    target = await startTarget(name, args());
    client = connect(target);
    use(target, client);
  });
  afterAll(async () => {
    client?.close();
    await target?.stop();
  });
}
