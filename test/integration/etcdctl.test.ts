/**
 * etcdctl 3.4 (the real binary, ETCDCTL_API=3) against mergekv and, as the
 * reference, a real etcd: the commands operators type, with their exact
 * output. Every command also runs against mergekv over TLS (https://, client
 * certificates required; etcdctl with --cacert, --cert, --key). Revisions
 * are read from `-w json` and asserted relative to each other.
 */
import { startTarget, Target, TARGETS, TargetName } from "../helpers/targets";
import { etcdctlOk, etcdctlOn } from "../helpers/etcdctl";

const SERVERS: TargetName[] = [...TARGETS, "mergekv-tls"];

/** etcdctl's JSON has uint64 ids beyond 2^53: quote them so they survive JSON.parse exactly. */
function parseJson(text: string): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(text.replace(/"(cluster_id|member_id|leader|ID)":(\d+)/g, '"$1":"$2"'));
}

describe.each(SERVERS)("etcdctl on %s", (name) => {
  let target: Target;
  const etcdctl = (args: string[], input?: string) => etcdctlOn(target, args, input);
  const ok = (...args: string[]): Promise<string> => etcdctlOk(target, ...args);
  /** Runs etcdctl and expects exit code 1 with etcd's error line. */
  const fails = async (message: string, ...args: string[]): Promise<void> => {
    const r = await etcdctl(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Error: ${message}\n`);
    expect(r.stdout).toBe("");
  };
  const revisionOf = async (...getArgs: string[]): Promise<number> => parseJson(await ok("get", ...getArgs, "-w", "json")).header.revision;

  beforeAll(async () => {
    target = await startTarget(name);
  });

  afterAll(async () => {
    await target?.stop();
  });

  test("put, and put --prev-kv", async () => {
    expect(await ok("put", "foo", "bar")).toBe("OK\n");
    expect(await ok("put", "foo", "baz", "--prev-kv")).toBe("OK\nfoo\nbar\n");
    expect(await ok("put", "foo1", "v1")).toBe("OK\n");
    expect(await ok("put", "foo2", "v2")).toBe("OK\n");
    expect(await ok("put", "zoo", "z")).toBe("OK\n");
    expect(await ok("put", "fresh", "x", "--prev-kv")).toBe("OK\n");
  });

  test("get: a key, --prefix, --from-key, --limit, --keys-only, --print-value-only", async () => {
    expect(await ok("get", "foo")).toBe("foo\nbaz\n");
    expect(await ok("get", "nothing")).toBe("");
    expect(await ok("get", "foo", "--prefix")).toBe("foo\nbaz\nfoo1\nv1\nfoo2\nv2\n");
    expect(await ok("get", "foo1", "--from-key")).toBe("foo1\nv1\nfoo2\nv2\nfresh\nx\nzoo\nz\n");
    expect(await ok("get", "foo", "--prefix", "--limit", "2")).toBe("foo\nbaz\nfoo1\nv1\n");
    expect(await ok("get", "foo", "--prefix", "--keys-only")).toBe("foo\n\nfoo1\n\nfoo2\n\n");
    expect(await ok("get", "foo", "--prefix", "--print-value-only")).toBe("baz\nv1\nv2\n");
    expect(await ok("get", "foo", "foo2")).toBe("foo\nbaz\nfoo1\nv1\n"); // explicit range end
    expect(await ok("get", "", "--prefix", "--keys-only")).toBe("foo\n\nfoo1\n\nfoo2\n\nfresh\n\nzoo\n\n");
  });

  test("get --sort-by/--order", async () => {
    expect(await ok("get", "foo", "--prefix", "--sort-by=VALUE", "--order=DESCEND")).toBe("foo2\nv2\nfoo1\nv1\nfoo\nbaz\n");
    expect(await ok("get", "foo", "--prefix", "--sort-by=VALUE", "--order=ASCEND")).toBe("foo\nbaz\nfoo1\nv1\nfoo2\nv2\n");
    expect(await ok("get", "foo", "--prefix", "--sort-by=KEY", "--order=DESCEND", "--keys-only")).toBe("foo2\n\nfoo1\n\nfoo\n\n");
    expect(await ok("get", "foo", "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "--keys-only")).toBe("foo2\n\nfoo1\n\nfoo\n\n");
    expect(await ok("get", "foo", "--prefix", "--sort-by=CREATE", "--order=ASCEND", "--keys-only")).toBe("foo\n\nfoo1\n\nfoo2\n\n");
    // foo has version 2, the others 1; ties stay in key order.
    expect(await ok("get", "", "--from-key", "--sort-by=VERSION", "--order=DESCEND", "--keys-only")).toBe("foo\n\nfoo1\n\nfoo2\n\nfresh\n\nzoo\n\n");
  });

  test("get -w json: header revision, create/mod revision, version, base64 key and value, count and more", async () => {
    const before = await revisionOf("foo");
    const put = parseJson(await ok("put", "js", "one", "-w", "json"));
    expect(put.header.revision).toBe(before + 1);
    await ok("put", "js", "two");
    const got = parseJson(await ok("get", "js", "-w", "json"));
    expect(got.header.revision).toBe(before + 2);
    expect(got.count).toBe(1);
    expect(got.kvs).toEqual([{ key: Buffer.from("js").toString("base64"), value: Buffer.from("two").toString("base64"), create_revision: before + 1, mod_revision: before + 2, version: 2 }]);
    expect(got.header.member_id).toMatch(/^\d+$/);

    const limited = parseJson(await ok("get", "foo", "--prefix", "--limit", "1", "-w", "json"));
    expect(limited.count).toBe(3);
    expect(limited.more).toBe(true);
    expect(limited.kvs).toHaveLength(1);

    const missing = parseJson(await ok("get", "nothing", "-w", "json"));
    expect(missing.kvs).toBeUndefined();
    expect(missing.header.revision).toBe(before + 2);
  });

  test("get --rev reads history; --consistency=s reads the latest", async () => {
    const r1 = parseJson(await ok("put", "hist", "first", "-w", "json")).header.revision;
    const r2 = parseJson(await ok("put", "hist", "second", "-w", "json")).header.revision;
    expect(await ok("get", "hist", `--rev=${r1}`)).toBe("hist\nfirst\n");
    expect(await ok("get", "hist", `--rev=${r2}`)).toBe("hist\nsecond\n");
    expect(await ok("get", "hist", `--rev=${r1 - 1}`)).toBe("");
    // Serializable reads may lag the newest write; etcdctl's own start-up (tens of ms) is far longer than that lag.
    expect(await ok("get", "hist", "--consistency=s")).toBe("hist\nsecond\n");
    expect(await ok("get", "hist", "--consistency=l")).toBe("hist\nsecond\n");
    await fails("etcdserver: mvcc: required revision is a future revision", "get", "hist", `--rev=${r2 + 1000}`);
  });

  test("del, del --prev-kv, del --prefix", async () => {
    await ok("put", "d/a", "1");
    await ok("put", "d/b", "2");
    await ok("put", "d/c", "3");
    const before = await revisionOf("d/a");
    expect(await ok("del", "d/a", "--prev-kv")).toBe("1\nd/a\n1\n");
    expect(await ok("del", "d/a")).toBe("0\n");
    expect(await revisionOf("d/a")).toBe(before + 1); // deleting nothing does not raise the revision
    expect(await ok("del", "d/", "--prefix")).toBe("2\n");
    expect(await ok("get", "d/", "--prefix")).toBe("");
    expect(await revisionOf("d/a")).toBe(before + 2); // one revision for the whole prefix
  });

  test("txn from stdin (--interactive=false): success, failure, -w json", async () => {
    await ok("put", "t/key", "v");
    const before = await revisionOf("t/key");
    const success = await etcdctl(["txn", "--interactive=false"], 'value("t/key") = "v"\n\nput t/key v2\nput t/new n\n\nput t/key nope\n\n');
    expect(success).toEqual({ code: 0, stdout: "SUCCESS\n\nOK\n\nOK\n", stderr: "" });
    expect(await ok("get", "t/", "--prefix")).toBe("t/key\nv2\nt/new\nn\n");
    expect(await revisionOf("t/key")).toBe(before + 1);

    const failure = await etcdctl(["txn"], 'value("t/key") = "v"\n\nput t/key never\n\nget t/key\n\n');
    expect(failure).toEqual({ code: 0, stdout: "FAILURE\n\nt/key\nv2\n", stderr: "" });
    expect(await revisionOf("t/key")).toBe(before + 1);

    const lock = await etcdctl(["txn"], 'create("t/lock") = "0"\n\nput t/lock held\n\n\n');
    expect(lock.stdout).toBe("SUCCESS\n\nOK\n");
    const again = await etcdctl(["txn"], 'create("t/lock") = "0"\n\nput t/lock held\n\n\n');
    expect(again.stdout).toBe("FAILURE\n");

    const json = await etcdctl(["txn", "-w", "json"], 'mod("t/key") > "0"\n\nget t/key\ndel t/new\n\n\n');
    expect(json.code).toBe(0);
    const r = parseJson(json.stdout);
    expect(r.succeeded).toBe(true);
    expect(r.header.revision).toBe(before + 3);
    const range = r.responses[0].Response.ResponseRange;
    expect(range.kvs[0]).toMatchObject({ key: Buffer.from("t/key").toString("base64"), value: Buffer.from("v2").toString("base64"), mod_revision: before + 1 });
    expect(r.responses[1].Response.ResponseDeleteRange.deleted).toBe(1);
  });

  test("compaction, and --physical: old revisions fail, the compact revision reads, compacting again fails", async () => {
    const r1 = parseJson(await ok("put", "c/k", "one", "-w", "json")).header.revision;
    const r2 = parseJson(await ok("put", "c/k", "two", "-w", "json")).header.revision;
    expect(await ok("compaction", String(r2))).toBe(`compacted revision ${r2}\n`);
    await fails("etcdserver: mvcc: required revision has been compacted", "get", "c/k", `--rev=${r1}`);
    expect(await ok("get", "c/k", `--rev=${r2}`)).toBe("c/k\ntwo\n");
    await fails("etcdserver: mvcc: required revision has been compacted", "compaction", String(r2));
    await fails("etcdserver: mvcc: required revision is a future revision", "compaction", String(r2 + 1000));
    expect(await revisionOf("c/k")).toBe(r2); // compaction does not raise the revision

    const r3 = parseJson(await ok("put", "c/k", "three", "-w", "json")).header.revision;
    expect(await ok("compaction", String(r3), "--physical")).toBe(`compacted revision ${r3}\n`);
    expect(await ok("get", "c/k")).toBe("c/k\nthree\n");
  });

  test("endpoint status -w json: version, revision, raftIndex, dbSize", async () => {
    const rev = await revisionOf("foo");
    const status = parseJson(await ok("endpoint", "status", "-w", "json"));
    expect(status).toHaveLength(1);
    expect(status[0].Endpoint).toBe(target.ctlEndpoint);
    const s = status[0].Status;
    expect(s.version).toMatch(/^3\.4\./);
    expect(s.header.revision).toBe(rev);
    expect(s.raftIndex).toBeGreaterThan(0);
    expect(s.raftTerm).toBeGreaterThan(0);
    expect(s.dbSize).toBeGreaterThan(0);
    expect(s.leader).toBe(s.header.member_id);

    const table = await ok("endpoint", "status");
    expect(table).toMatch(new RegExp(`^${target.ctlEndpoint}, [0-9a-f]+, 3\\.4\\.\\d+, [\\d.]+ [kMG]?B, true, false, \\d+, \\d+, \\d+, \\n$`));
  });

  test("endpoint health", async () => {
    // etcdctl prints the health line on stderr.
    const health = await etcdctl(["endpoint", "health"]);
    expect(health.code).toBe(0);
    expect(health.stderr).toMatch(new RegExp(`^${target.ctlEndpoint} is healthy: successfully committed proposal: took = [\\d.]+[mµn]?s\\n$`));
    const json = parseJson(await ok("endpoint", "health", "-w", "json"));
    expect(json).toEqual([expect.objectContaining({ endpoint: target.ctlEndpoint, health: true })]);
  });

  test("member list: one started member, its client URL, the id endpoint status reports", async () => {
    const members = parseJson(await ok("member", "list", "-w", "json"));
    expect(members.members).toHaveLength(1);
    const m = members.members[0];
    expect(m.name).toBe("default");
    expect(m.clientURLs).toEqual([target.clientUrl]);
    const status = parseJson(await ok("endpoint", "status", "-w", "json"))[0].Status;
    expect(m.ID).toBe(status.header.member_id);
    expect(members.header.member_id).toBe(m.ID);

    const idHex = BigInt(m.ID).toString(16);
    const line = await ok("member", "list");
    expect(line).toMatch(new RegExp(`^${idHex}, started, default, [^,]*, ${target.clientUrl}, false\\n$`));
  });

  test("move-leader: to the one member itself, and to an id that is not a member", async () => {
    const id = BigInt(parseJson(await ok("member", "list", "-w", "json")).members[0].ID).toString(16);
    expect(await ok("move-leader", id)).toBe(`Leadership transferred from ${id} to ${id}\n`);
    await fails("etcdserver: bad leader transferee", "move-leader", "123");
  });

  test("member promote: a learner that has not started is not in sync; a voting member or an unknown id gets etcd's error", async () => {
    const added = await ok("member", "add", "learner", "--learner", "--peer-urls=http://127.0.0.1:23999");
    const learner = /Member\s+([0-9a-f]+) added/.exec(added)![1];
    expect(await ok("member", "list")).toContain(`${learner}, unstarted, , http://127.0.0.1:23999, , true\n`);
    const self = BigInt(parseJson(await ok("endpoint", "status", "-w", "json"))[0].Status.header.member_id).toString(16);
    try {
      await fails("etcdserver: can only promote a learner member which is in sync with leader", "member", "promote", learner);
      await fails("etcdserver: can only promote a learner member", "member", "promote", self);
      await fails("etcdserver: member not found", "member", "promote", "1234");
    } finally {
      await ok("member", "remove", learner);
    }
  });

  test("defrag, and the data is intact after it", async () => {
    const before = await ok("get", "", "--prefix");
    const rev = await revisionOf("foo");
    expect(await ok("defrag")).toBe(`Finished defragmenting etcd member[${target.ctlEndpoint}]\n`);
    expect(await ok("get", "", "--prefix")).toBe(before);
    expect(await revisionOf("foo")).toBe(rev);
    expect(await ok("put", "after/defrag", "yes")).toBe("OK\n");
    expect(await ok("get", "after/defrag")).toBe("after/defrag\nyes\n");
  });

  test("only the server's own transport reaches it: plain to plain, TLS with a client certificate to TLS", async () => {
    const quick = ["--command-timeout", "3s", "--dial-timeout", "2s", "get", "foo"];
    const wrong = target.tls ? ["--endpoints", `http://${target.endpoint}`] : ["--endpoints", `https://${target.endpoint}`, "--insecure-skip-tls-verify"];
    const r = await etcdctlOn({ etcdctlArgs: wrong }, quick);
    expect([r.code, r.stdout, r.stderr]).toEqual([1, "", expect.stringContaining("Error: ")]);
    if (target.tls) {
      const noClientCert = await etcdctlOn({ etcdctlArgs: ["--endpoints", target.clientUrl, "--cacert", target.tls.ca] }, quick);
      expect([noClientCert.code, noClientCert.stdout, noClientCert.stderr]).toEqual([1, "", expect.stringContaining("Error: ")]);
    }
    expect(await ok("get", "foo", "--print-value-only")).toBe("baz\n");
  });

  test("errors reach etcdctl with etcd's messages", async () => {
    await fails("etcdserver: key is not provided", "put", "", "x");
    await fails("etcdserver: requested lease not found", "put", "k", "v", "--lease=1234");
    await fails("etcdserver: key not found", "put", "never-written", "--ignore-value");
    expect(await ok("put", "foo", "--ignore-value")).toBe("OK\n");
    expect(await ok("get", "foo")).toBe("foo\nbaz\n");
  });
});

/**
 * `etcdctl check datascale` writes 10,000 keys of 1 KiB and reads the
 * server's resident memory from /metrics on the client URL (always over
 * plain http://, so not against the TLS server, where etcd fails it too).
 */
describe.each(TARGETS)("etcdctl check datascale on %s", (name) => {
  test("passes, reading process_resident_memory_bytes from /metrics on the client port", async () => {
    const target = await startTarget(name);
    try {
      const r = await etcdctlOn(target, ["check", "datascale", "--load", "s"]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const used = /PASS: Approximate system memory used : ([\d.]+) MB\./.exec(r.stdout);
      expect(used).not.toBeNull();
      expect(Number(used![1])).toBeGreaterThan(0);
      expect(r.stdout).not.toContain("FAIL");
    } finally {
      await target.stop();
    }
  }, 120_000);
});
