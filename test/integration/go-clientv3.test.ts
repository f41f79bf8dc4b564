/**
 * etcd's own Go client (clientv3 of etcd 3.4) against mergekv and, as the
 * reference, a real etcd: test/go-client runs its checks (KV, Txn, Compact,
 * Watch, leases, the concurrency package's mutex, election and STM, the
 * Lock and Election services through etcd's own generated stubs,
 * namespaces, maintenance, exact errors, auth) and prints "ok NAME" or
 * "FAIL NAME: reason" per check. Every check must pass on both servers.
 *
 * Needs Go and etcd's Go source in GOPATH form (Debian: golang-go and
 * golang-etcd-server-dev); without them this suite fails, it does not skip.
 * The binary is built once per source version and cached in the temp dir.
 */
import { createHash } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startTarget, Target, TARGETS } from "../helpers/targets";
import { exec, expectEveryCheckPassed } from "../helpers/check-program";

const SOURCE_DIR = path.join(__dirname, "..", "go-client");
/** Debian's GOPATH, where golang-etcd-server-dev puts etcd and its dependencies. */
const GOPATH = "/usr/share/gocode";
const CLIENTV3_DIR = path.join(GOPATH, "src", "go.etcd.io", "etcd", "clientv3");
const CACHE_DIR = path.join(os.tmpdir(), "mergekv-go-client");
const INSTALL_HINT = "apt-get install -y golang-go golang-etcd-server-dev (see README.md)";
/** A cold build compiles etcd's client and grpc: about 30 s here; allow for a loaded machine. */
const BUILD_MS_MAX = 300_000;
/** The checks take about 5 s (one waits out a 2 s lease); each is bounded at 30 s by the program. */
const RUN_MS_MAX = 120_000;

const goEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  GO111MODULE: "off",
  GOPATH,
  GOFLAGS: "",
  GOCACHE: path.join(CACHE_DIR, "gocache"),
});

/** Builds test/go-client unless a binary of these exact sources and Go version exists; resolves to its path. */
async function buildGoClient(): Promise<string> {
  const version = await exec("go", ["version"], { timeoutMs: 30_000 }).catch((e: Error) => {
    throw new Error(`Go is not installed (${e.message.split("\n")[0]}): ${INSTALL_HINT}`);
  });
  if (!existsSync(CLIENTV3_DIR)) throw new Error(`etcd's Go client source is not in ${CLIENTV3_DIR}: ${INSTALL_HINT}`);
  const hash = createHash("sha256").update(version.stdout);
  for (const name of (await fs.readdir(SOURCE_DIR)).filter((n) => n.endsWith(".go")).sort()) {
    hash.update(name).update(await fs.readFile(path.join(SOURCE_DIR, name)));
  }
  const binary = path.join(CACHE_DIR, `go-client-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(binary)) return binary;
  await fs.mkdir(CACHE_DIR, { recursive: true });
  const partial = `${binary}.${process.pid}.partial`;
  const built = await exec("go", ["build", "-o", partial, "."], { cwd: SOURCE_DIR, env: goEnv(), timeoutMs: BUILD_MS_MAX });
  if (built.code !== 0) throw new Error(`go build of test/go-client failed (exit ${built.code}):\n${built.stderr}`);
  await fs.rename(partial, binary); // whole or absent, for a run that starts meanwhile
  return binary;
}

let binary: Promise<string> | undefined;

describe.each(TARGETS)("Go clientv3 on %s", (name) => {
  let target: Target;

  beforeAll(async () => {
    binary ??= buildGoClient();
    await binary;
    target = await startTarget(name);
  }, BUILD_MS_MAX + 60_000);

  afterAll(async () => {
    await target?.stop();
  });

  test("every check passes", async () => {
    const bin = await binary!;
    const names = (await exec(bin, ["-list"], { timeoutMs: 10_000 })).stdout.trim().split("\n");
    const ran = await exec(bin, ["-endpoints", target.endpoint], { timeoutMs: RUN_MS_MAX });
    expectEveryCheckPassed(names, ran);
  }, RUN_MS_MAX + 10_000);
});
