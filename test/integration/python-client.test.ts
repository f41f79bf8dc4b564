/**
 * Python's etcd clients against mergekv and, as the reference, a real etcd:
 * test/python-client/checks.py runs python-etcd3 (gRPC: KV, Txn, watches
 * with history and compaction, leases with expiry, its lock, maintenance,
 * alarms, auth) and OpenStack's etcd3gw (the JSON gateway: KV, Txn, leases,
 * its lock, watches, status) and prints "ok NAME" or "FAIL NAME: reason" per
 * check. Every check must pass on both servers.
 *
 * Needs Debian's python3-etcd3 and python3-etcd3gw (for the system
 * python3, /usr/bin/python3); without them this suite fails, it does not skip.
 */
import * as path from "node:path";
import { startTarget, Target, TARGETS } from "../helpers/targets";
import { exec, expectEveryCheckPassed } from "../helpers/check-program";

const SCRIPT = path.join(__dirname, "..", "python-client", "checks.py");
/** Debian's interpreter, where its python3-etcd3 packages are installed (a python3 earlier on PATH may not have them). */
const PYTHON = "/usr/bin/python3";
const INSTALL_HINT = "apt-get install -y python3-etcd3 python3-etcd3gw (see README.md)";
/** The checks take about 5 s (one waits out a 2 s lease); allow for a loaded machine. */
const RUN_MS_MAX = 120_000;

const python = (args: string[], timeoutMs: number) => exec(PYTHON, [SCRIPT, ...args], { timeoutMs });

describe.each(TARGETS)("Python clients on %s", (name) => {
  let target: Target;

  beforeAll(async () => {
    const list = await python(["--list", "--server", name], 30_000);
    if (list.code !== 0) throw new Error(`the Python checks cannot start (${INSTALL_HINT}):\n${list.stderr}`);
    target = await startTarget(name);
  }, 60_000);

  afterAll(async () => {
    await target?.stop();
  });

  test("every check passes", async () => {
    const names = (await python(["--list", "--server", name], 30_000)).stdout.trim().split("\n");
    expect(names.length).toBeGreaterThanOrEqual(15);
    const ran = await python(["--endpoint", target.endpoint, "--server", name], RUN_MS_MAX);
    expectEveryCheckPassed(names, ran);
  }, RUN_MS_MAX + 10_000);
});
