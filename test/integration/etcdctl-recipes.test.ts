/**
 * etcdctl's long-running commands, built on clientv3's recipes, on mergekv
 * and on a real etcd: `lock` (with a command to run under it), `elect` and
 * `elect -l`, and `make-mirror` from one server to the other in both
 * directions (a paged read at one revision, then a watch from the next:
 * what the mirror holds at the end must be what the source holds).
 */
import { ChildProcess, spawn } from "node:child_process";
import { startTarget, Target, TARGETS, TargetName } from "../helpers/targets";
import { etcdctlOk } from "../helpers/etcdctl";

/** A running etcdctl (a campaign, a mirror): its output so far, and a way to stop it. */
interface Running {
  output(): string;
  /** Resolves once `text` has appeared in its output (rejects after 10 s). */
  printed(text: RegExp): Promise<RegExpMatchArray>;
  /** SIGINT (etcdctl resigns or closes cleanly), then its exit. */
  stop(): Promise<void>;
}

function etcdctlRunning(target: Target, args: string[]): Running {
  const child: ChildProcess = spawn("etcdctl", [...target.etcdctlArgs, ...args], { env: { ...process.env, ETCDCTL_API: "3" } });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    output: () => out,
    printed: async (text) => {
      for (let i = 0; i < 200; i++) {
        const m = text.exec(out);
        if (m) return m;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`etcdctl ${args.join(" ")} did not print ${text} in 10 s; it printed: ${out}`);
    },
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGINT");
      await exited;
    },
  };
}

/** Polls `read` until it returns `want` (10 s), then asserts it. */
async function eventually<T>(read: () => Promise<T>, want: T): Promise<void> {
  let got = await read();
  for (let i = 0; i < 200 && JSON.stringify(got) !== JSON.stringify(want); i++) {
    await new Promise((r) => setTimeout(r, 50));
    got = await read();
  }
  expect(got).toEqual(want);
}

describe.each(TARGETS)("etcdctl lock and elect on %s", (name) => {
  let target: Target;
  const ok = (...args: string[]) => etcdctlOk(target, ...args);

  beforeAll(async () => { target = await startTarget(name); }, 60_000);
  afterAll(async () => { await target?.stop(); });

  test("lock NAME COMMAND: runs the command holding the lock (ETCD_LOCK_KEY, ETCD_LOCK_REV), then releases it", async () => {
    const held = `etcdctl --endpoints ${target.ctlEndpoint} get --prefix ctl-lock --keys-only`;
    const out = await ok("lock", "ctl-lock", "--", "sh", "-c", `echo key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV; ${held}`);
    const m = /^key=(ctl-lock\/[0-9a-f]+) rev=(\d+)\n(.*)\n\n$/.exec(out);
    expect(m).not.toBeNull();
    expect(m![3]).toBe(m![1]); // the lock's key exists while the command runs
    expect(Number(m![2])).toBeGreaterThan(0);
    expect(await ok("get", "--prefix", "ctl-lock", "--keys-only")).toBe(""); // released
  });

  test("elect NAME PROPOSAL campaigns and holds; elect -l prints the leader; SIGINT resigns", async () => {
    const campaign = etcdctlRunning(target, ["elect", "ctl-election", "alice"]);
    try {
      const [, leaderKey] = await campaign.printed(/^(ctl-election\/[0-9a-f]+)\nalice\n/);
      const listener = etcdctlRunning(target, ["elect", "-l", "ctl-election"]);
      try {
        await listener.printed(new RegExp(`^${leaderKey}\\nalice\\n`));
      } finally {
        await listener.stop();
      }
      const second = etcdctlRunning(target, ["elect", "ctl-election", "bob"]);
      try {
        await new Promise((r) => setTimeout(r, 500));
        expect(second.output()).toBe(""); // waiting behind alice
        await campaign.stop(); // resigns
        await second.printed(/^ctl-election\/[0-9a-f]+\nbob\n/);
      } finally {
        await second.stop();
      }
    } finally {
      await campaign.stop();
    }
    await eventually(() => ok("get", "--prefix", "ctl-election", "--keys-only"), "");
  });
});

const DIRECTIONS: [TargetName, TargetName][] = [["mergekv", "etcd"], ["etcd", "mergekv"]];

describe.each(DIRECTIONS)("etcdctl make-mirror from %s to %s", (from, to) => {
  let source: Target, dest: Target;
  beforeAll(async () => { [source, dest] = await Promise.all([startTarget(from), startTarget(to)]); }, 60_000);
  afterAll(async () => { await Promise.all([source?.stop(), dest?.stop()]); });

  test("the keys at the start, then every put and delete as they happen", async () => {
    const listing = (t: Target) => etcdctlOk(t, "get", "--prefix", "mm/");
    for (let i = 1; i <= 5; i++) await etcdctlOk(source, "put", `mm/k${i}`, `v${i}`);
    await etcdctlOk(source, "del", "mm/k2");
    await etcdctlOk(source, "put", "other/x", "not mirrored");
    const mirror = etcdctlRunning(source, ["make-mirror", "--prefix", "mm/", dest.ctlEndpoint]);
    try {
      await eventually(() => listing(dest), "mm/k1\nv1\nmm/k3\nv3\nmm/k4\nv4\nmm/k5\nv5\n");
      await etcdctlOk(source, "put", "mm/k6", "v6");
      await etcdctlOk(source, "del", "mm/k1");
      await etcdctlOk(source, "put", "mm/k3", "v3b");
      const want = await listing(source);
      expect(want).toBe("mm/k3\nv3b\nmm/k4\nv4\nmm/k5\nv5\nmm/k6\nv6\n");
      await eventually(() => listing(dest), want);
      expect(await etcdctlOk(dest, "get", "other/x")).toBe("");
    } finally {
      await mirror.stop();
    }
  });
});
