/**
 * Auth against the real server and, as the reference, a real etcd 3.4:
 * etcdctl (--user), the npm etcd3 client (auth option) and raw gRPC calls
 * carrying metadata "token". root, a role "app" (readwrite on prefix app/,
 * read on key ro), alice (role app) and bob (no roles); then what each may
 * do, etcd's exact errors, and that the auth state survives a restart.
 * Where etcd 3.4 differs on purpose or by its own bug, the assertion says so.
 */
import * as grpc from "@grpc/grpc-js";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError } from "etcd3";
import { serveSuite, Target, TARGETS } from "../helpers/targets";
import { etcdctlOk, etcdctlOn } from "../helpers/etcdctl";
import { b, grpcError, Msg, rawClient, RawClient, watchStream } from "../helpers/grpc";

const ROOT = ["--user", "root:rootpw"];
const ALICE = ["--user", "alice:alicepw"];
const BOB = ["--user", "bob:bobpw"];
/** etcd's cancel_reason for a denied watch: the Go text of the gRPC status. */
const WATCH_DENIED = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
const denied = { code: 7, details: "etcdserver: permission denied" };
/** An etcdctl watch that printed nothing more by then has nothing more to print. */
const WATCH_OUTPUT_WAIT_MS = 10_000;

const withToken = (token: string): grpc.Metadata => {
  const m = new grpc.Metadata();
  m.set("token", token);
  return m;
};

describe.each(TARGETS)("auth on %s", (name) => {
  let target: Target;
  let raw: RawClient;
  const etcdctl = (args: string[], input?: string) => etcdctlOn(target, args, input);
  const ok = (...args: string[]): Promise<string> => etcdctlOk(target, ...args);
  /** Expects etcd's error line and exit code 1 (2 when etcdctl could not even authenticate). */
  const fails = async (message: string, ...args: string[]): Promise<void> => {
    const r = await etcdctl(args);
    const code = message.startsWith("etcdserver: authentication failed") ? 2 : 1;
    expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code, stdout: "" });
    expect(r.stderr).toContain(`Error: ${message}\n`);
  };
  const token = async (name: string, password: string): Promise<string> => (await raw.call("Auth", "Authenticate", { name, password })).token;
  const client = (username: string, password: string) => new Etcd3({ hosts: `http://${target.endpoint}`, auth: { username, password } });

  serveSuite(name, (t) => rawClient(t.endpoint), (t, c) => { target = t; raw = c; });

  test("auth enable: refused without a root user; etcdctl then adds the root role and enables", async () => {
    await fails("etcdserver: root user does not exist", "auth", "enable");
    expect(await ok("user", "add", "root:rootpw")).toBe("User root created\n");
    expect(await ok("role", "add", "app")).toBe("Role app created\n");
    expect(await ok("role", "grant-permission", "app", "--prefix", "readwrite", "app/")).toBe("Role app updated\n");
    expect(await ok("role", "grant-permission", "app", "read", "ro")).toBe("Role app updated\n");
    expect(await ok("user", "add", "alice:alicepw")).toBe("User alice created\n");
    expect(await ok("user", "grant-role", "alice", "app")).toBe("Role app is granted to user alice\n");
    expect(await ok("user", "add", "bob:bobpw")).toBe("User bob created\n");
    await ok("put", "ro", "read-only");
    await ok("put", "other", "secret");
    expect(await grpcError(raw.call("Auth", "Authenticate", { name: "alice", password: "alicepw" })))
      .toEqual({ code: 9, details: "etcdserver: authentication is not enabled" });

    // etcdctl gets RootRoleNotExist, adds the role, grants it to root, and tries again.
    expect((await etcdctl(["auth", "enable"])).stdout).toBe("Authentication Enabled\n");
    expect(await ok(...ROOT, "user", "get", "root")).toBe("User: root\nRoles: root\n");
    expect(await ok(...ROOT, "role", "list")).toBe("app\nroot\n");
    expect(await ok(...ROOT, "user", "list")).toBe("alice\nbob\nroot\n");
    expect(await ok(...ROOT, "role", "get", "app")).toBe("Role app\nKV Read:\n\t[app/, app0) (prefix app/)\n\tro\nKV Write:\n\t[app/, app0) (prefix app/)\n");
    await fails("etcdserver: user name is empty", "get", "app/x");
    await fails("etcdserver: authentication failed, invalid user ID or password", "--user", "alice:wrong", "get", "app/x");
    await fails("etcdserver: authentication failed, invalid user ID or password", "--user", "nobody:pw", "get", "app/x");
  });

  test("etcdctl as alice: Range, Put, Delete and Txn inside her permissions work, outside are denied", async () => {
    expect(await ok(...ALICE, "put", "app/a", "1")).toBe("OK\n");
    expect(await ok(...ALICE, "put", "app/a", "2", "--prev-kv")).toBe("OK\napp/a\n1\n");
    expect(await ok(...ALICE, "get", "app/", "--prefix")).toBe("app/a\n2\n");
    expect(await ok(...ALICE, "get", "ro")).toBe("ro\nread-only\n");
    await fails("etcdserver: permission denied", ...ALICE, "put", "ro", "x");
    await fails("etcdserver: permission denied", ...ALICE, "put", "other", "x");
    await fails("etcdserver: permission denied", ...ALICE, "get", "other");
    await fails("etcdserver: permission denied", ...ALICE, "get", "", "--prefix");
    await fails("etcdserver: permission denied", ...ALICE, "get", "app/", "--from-key");
    await fails("etcdserver: permission denied", ...ALICE, "get", "ro", "--prefix"); // "ro" itself only, not "ro..."
    await fails("etcdserver: permission denied", ...ALICE, "del", "other");
    await fails("etcdserver: permission denied", ...ALICE, "del", "ro");
    expect(await ok(...ROOT, "get", "other", "--print-value-only")).toBe("secret\n");

    const txn = (input: string) => etcdctl([...ALICE, "txn"], input);
    expect(await txn('value("app/a") = "2"\n\nput app/b 3\n\nget ro\n\n')).toEqual({ code: 0, stdout: "SUCCESS\n\nOK\n", stderr: "" });
    for (const input of [
      'value("other") = "secret"\n\nput app/c 1\n\n\n', // a compare outside
      'value("app/a") = "2"\n\nput app/c 1\n\nget other\n\n', // a branch that does not run
      'value("app/a") = "2"\n\nput ro x\n\n\n',
    ]) {
      const r = await txn(input);
      expect([r.code, r.stdout, r.stderr]).toEqual([1, "", expect.stringContaining("Error: etcdserver: permission denied\n")]);
    }
    expect(await ok(...ALICE, "del", "app/", "--prefix")).toBe("2\n");
    expect(await ok(...ALICE, "get", "app/", "--prefix")).toBe("");
  });

  test("etcdctl watch: events inside the permission; outside, canceled with permission denied", async () => {
    const rev = JSON.parse(await ok(...ALICE, "put", "app/w", "hello", "-w", "json")).header.revision;
    const child = spawn("etcdctl", [...target.etcdctlArgs, ...ALICE, "watch", "app/", "--prefix", `--rev=${rev}`], { env: { ...process.env, ETCDCTL_API: "3" } });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const deadline = Date.now() + WATCH_OUTPUT_WAIT_MS;
    while (!out.includes("hello\n") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const exited = child.exitCode === null ? once(child, "exit") : Promise.resolve();
    child.kill("SIGTERM");
    await exited;
    expect(out).toBe("PUT\napp/w\nhello\n");

    const r = await etcdctl([...ALICE, "watch", "other"]);
    expect(r.code).toBe(5);
    expect(r.stdout + r.stderr).toContain(`watch was canceled (${WATCH_DENIED})`);
    expect(r.stderr).toContain("Error: watch is canceled by the server\n");
  });

  test("raw gRPC: etcd's codes and messages for a missing, bad, empty or insufficient token", async () => {
    const alice = await token("alice", "alicepw");
    const range = (key: string, md?: grpc.Metadata) => raw.call("KV", "Range", { key: b(key) }, md);
    expect(await grpcError(range("app/x"))).toEqual({ code: 3, details: "etcdserver: user name is empty" });
    expect(await grpcError(range("app/x", withToken("not-a-token")))).toEqual({ code: 16, details: "etcdserver: invalid auth token" });
    expect(await grpcError(range("app/x", withToken("")))).toEqual({ code: 16, details: "etcdserver: invalid auth token" });
    expect(await grpcError(range("other", withToken(alice)))).toEqual(denied);
    expect((await range("ro", withToken(alice))).count).toBe("1");
    expect(await grpcError(raw.call("KV", "Put", { key: b("ro"), value: b("x") }, withToken(alice)))).toEqual(denied);
    expect(await grpcError(raw.call("KV", "DeleteRange", { key: b("app/"), range_end: b("app0"), prev_kv: true }, withToken(await token("bob", "bobpw"))))).toEqual(denied);
    expect(await grpcError(raw.call("Auth", "Authenticate", { name: "alice", password: "nope" })))
      .toEqual({ code: 3, details: "etcdserver: authentication failed, invalid user ID or password" });
  });

  test("raw gRPC: user and role management errors", async () => {
    const root = withToken(await token("root", "rootpw"));
    const auth = (method: string, req: Msg, md = root) => grpcError(raw.call("Auth", method, req, md));
    const management = { code: 3, details: "etcdserver: invalid auth management" };
    expect(await auth("UserList", {}, withToken(await token("alice", "alicepw")))).toEqual(denied);
    expect(await auth("UserList", {}, new grpc.Metadata())).toEqual({ code: 3, details: "etcdserver: user name is empty" });
    expect(await auth("UserDelete", { name: "root" })).toEqual(management);
    expect(await auth("UserRevokeRole", { name: "root", role: "root" })).toEqual(management);
    expect(await auth("RoleDelete", { role: "root" })).toEqual(management);
    expect(await auth("UserAdd", { name: "alice", password: "x" })).toEqual({ code: 9, details: "etcdserver: user name already exists" });
    expect(await auth("UserAdd", { name: "", password: "x" })).toEqual({ code: 3, details: "etcdserver: user name is empty" });
    expect(await auth("RoleAdd", { name: "app" })).toEqual({ code: 9, details: "etcdserver: role name already exists" });
    expect(await auth("RoleAdd", { name: "" })).toEqual({ code: 3, details: "etcdserver: role name is empty" });
    expect(await auth("UserGet", { name: "nobody" })).toEqual({ code: 9, details: "etcdserver: user name not found" });
    expect(await auth("RoleGet", { role: "nothing" })).toEqual({ code: 9, details: "etcdserver: role name not found" });
    expect(await auth("UserGrantRole", { user: "bob", role: "nothing" })).toEqual({ code: 9, details: "etcdserver: role name not found" });
    expect(await auth("UserRevokeRole", { name: "alice", role: "root" })).toEqual({ code: 9, details: "etcdserver: role is not granted to the user" });
    expect(await auth("RoleRevokePermission", { role: "app", key: b("nothing") })).toEqual({ code: 9, details: "etcdserver: permission is not granted to the role" });
    expect((await raw.call("Auth", "RoleGet", { role: "root" }, root)).perm).toEqual([]);
  });

  test("raw Watch stream: a denied create is canceled with watch_id -1 and takes no id", async () => {
    const alice = await token("alice", "alicepw");
    const w = watchStream(target.endpoint, withToken(alice));
    try {
      w.send({ create_request: { key: b("other") } });
      expect(await w.next()).toMatchObject({ watch_id: "-1", created: true, canceled: true, cancel_reason: WATCH_DENIED });
      w.send({ create_request: { key: b("app/"), range_end: b("app0") } });
      expect(await w.next()).toMatchObject({ watch_id: "0", created: true, canceled: false });
      await raw.call("KV", "Put", { key: b("app/raw"), value: b("v") }, withToken(alice));
      const events = await w.next();
      expect([events.watch_id, events.events.map((e: Msg) => e.kv.key.toString())]).toEqual(["0", ["app/raw"]]);
      // From app/ to the end of the keyspace: etcd 3.4 checks only the key "app/" there (its bug); mergekv the whole range.
      w.send({ create_request: { key: b("app/"), range_end: b("\0") } });
      expect(await w.next()).toMatchObject(target.mergekv ? { watch_id: "-1", canceled: true, cancel_reason: WATCH_DENIED } : { watch_id: "1", canceled: false });
    } finally {
      w.close();
    }
    // A bad token: mergekv refuses the stream; etcd 3.4 keeps it and cancels each create.
    const bad = watchStream(target.endpoint, withToken("not-a-token"));
    try {
      bad.send({ create_request: { key: b("app/") } });
      if (target.mergekv) {
        await expect(bad.next()).rejects.toMatchObject({ code: 16, details: "etcdserver: invalid auth token" });
      } else {
        expect(await bad.next()).toMatchObject({ watch_id: "-1", canceled: true, cancel_reason: "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token" });
      }
    } finally {
      bad.close();
    }
  });

  test("leases: alice grants, attaches, keeps alive and revokes her own; not a lease holding keys she cannot write", async () => {
    const granted = await ok(...ALICE, "lease", "grant", "60");
    const id = /^lease ([0-9a-f]+) granted with TTL\(60s\)\n$/.exec(granted)![1];
    expect(await ok(...ALICE, "put", "app/l", "v", `--lease=${id}`)).toBe("OK\n");
    expect(await ok(...ALICE, "lease", "timetolive", id, "--keys")).toMatch(new RegExp(`^lease ${id} granted with TTL\\(60s\\), remaining\\(\\d+s\\), attached keys\\(\\[app/l\\]\\)\\n$`));
    expect(await ok(...ALICE, "lease", "keep-alive", "--once", id)).toBe(`lease ${id} keepalived with TTL(60)\n`);
    expect(await ok(...ALICE, "lease", "list")).toContain(`${id}\n`);
    expect(await ok(...ALICE, "lease", "revoke", id)).toBe(`lease ${id} revoked\n`);
    expect(await ok(...ALICE, "get", "app/l")).toBe("");

    const rootLease = /^lease ([0-9a-f]+) granted/.exec(await ok(...ROOT, "lease", "grant", "60"))![1];
    await ok(...ROOT, "put", "leased-secret", "s", `--lease=${rootLease}`);
    await fails("failed to revoke lease (etcdserver: permission denied)", ...ALICE, "lease", "revoke", rootLease);
    await fails("etcdserver: permission denied", ...ALICE, "put", "app/l2", "v", `--lease=${rootLease}`);
    expect(await ok(...ROOT, "get", "leased-secret", "--print-value-only")).toBe("s\n");
    expect(await ok(...ROOT, "lease", "revoke", rootLease)).toBe(`lease ${rootLease} revoked\n`);
    expect(await ok(...ROOT, "get", "leased-secret")).toBe("");
  });

  test("maintenance and cluster: root only, where etcd 3.4 checks; status, member list and health for everyone", async () => {
    expect(await ok(...ALICE, "member", "list")).toContain(`, started, default, `);
    expect(JSON.parse((await ok(...ALICE, "endpoint", "status", "-w", "json")).replace(/:(\d{16,})/g, ':"$1"'))[0].Status.version).toMatch(/^3\.4\./);
    for (const who of [ALICE, BOB]) { // bob has no permission on key "health" at all
      const health = await etcdctl([...who, "endpoint", "health"]);
      expect([health.code, health.stderr]).toEqual([0, expect.stringMatching(new RegExp(`${target.ctlEndpoint} is healthy: successfully committed proposal`))]);
    }
    await fails("etcdserver: permission denied", ...ALICE, "member", "add", "extra", "--peer-urls=http://127.0.0.1:1");
    await fails("etcdserver: permission denied", ...ALICE, "user", "add", "mallory:pw");
    await fails("etcdserver: permission denied", ...ALICE, "role", "list");
    await fails("etcdserver: permission denied", ...ALICE, "auth", "disable");
    // etcd 3.4 answers these with its untranslated "auth: permission denied" (code Unknown); mergekv with etcd's usual error.
    const adminDenied = target.mergekv ? "etcdserver: permission denied" : "rpc error: code = Unknown desc = auth: permission denied";
    expect((await etcdctl([...ALICE, "defrag"])).stderr).toContain(`Failed to defragment etcd member[${target.ctlEndpoint}] (${adminDenied})`);
    await fails(adminDenied, ...ALICE, "endpoint", "hashkv");
    const file = path.join(os.tmpdir(), `mergekv-auth-${process.pid}-${name}.db`);
    const snapshot = await etcdctl([...ALICE, "snapshot", "save", file]);
    expect([snapshot.code, snapshot.stderr]).toEqual([5, expect.stringContaining(adminDenied)]); // 5: etcdctl's "interrupted"
    const rootSnapshot = await etcdctl([...ROOT, "snapshot", "save", file]);
    expect([rootSnapshot.code, rootSnapshot.stdout]).toEqual([0, `Snapshot saved at ${file}\n`]);
    await fs.rm(file, { force: true });
    // etcd 3.4 lets any user compact and read or change alarms; mergekv keeps them for root.
    const rev = JSON.parse(await ok(...ROOT, "get", "ro", "-w", "json")).header.revision;
    if (target.mergekv) {
      await fails("etcdserver: permission denied", ...ALICE, "compaction", String(rev));
      await fails("etcdserver: permission denied", ...ALICE, "alarm", "list");
    } else {
      expect(await ok(...ALICE, "compaction", String(rev))).toBe(`compacted revision ${rev}\n`);
      expect(await ok(...ALICE, "alarm", "list")).toBe("");
    }
    expect(await ok(...ROOT, "defrag")).toBe(`Finished defragmenting etcd member[${target.ctlEndpoint}]\n`);
    expect(await ok(...ROOT, "endpoint", "hashkv")).toMatch(/, \d+\n$/);
    expect(await ok(...ROOT, "alarm", "list")).toBe("");
  });

  test("the etcd3 client with auth: allowed calls work, denied ones throw EtcdPermissionDeniedError", async () => {
    const alice = client("alice", "alicepw");
    try {
      await alice.put("app/n").value("1");
      expect(await alice.get("app/n").string()).toBe("1");
      expect(await alice.getAll().prefix("app/").keys()).toEqual(["app/n", "app/raw", "app/w"]);
      await expect(alice.put("other").value("x")).rejects.toBeInstanceOf(EtcdPermissionDeniedError);
      await expect(alice.get("other").string()).rejects.toBeInstanceOf(EtcdPermissionDeniedError);

      const watcher = await alice.watch().prefix("app/").create();
      const seen = new Promise<string>((resolve) => watcher.on("put", (kv) => resolve(kv.value.toString())));
      await alice.put("app/n").value("2");
      expect(await seen).toBe("2");
      await watcher.cancel();
      const deniedWatch = alice.watch().key("other").create();
      await expect(deniedWatch).rejects.toBeInstanceOf(EtcdPermissionDeniedError);

      const lease = alice.lease(30, { autoKeepAlive: false });
      await lease.put("app/leased").value("v");
      expect(await alice.get("app/leased").string()).toBe("v");
      await lease.revoke();
      expect(await alice.get("app/leased").string()).toBeNull();
      await alice.delete().prefix("app/");
    } finally {
      alice.close();
    }
    const wrong = client("alice", "wrong");
    await expect(wrong.get("app/n").string()).rejects.toBeInstanceOf(EtcdAuthenticationFailedError);
    wrong.close();
    const root = client("root", "rootpw");
    expect((await root.getUsers()).map((u) => u.name).sort()).toEqual(["alice", "bob", "root"]);
    expect(await root.get("other").string()).toBe("secret");
    root.close();
  });

  test("auth survives a restart; mergekv's tokens do not", async () => {
    const before = await token("alice", "alicepw");
    await target.restart();
    raw.close();
    raw = rawClient(target.endpoint);
    // etcd replays its log on start, Authenticate entries too, so its simple tokens come back; mergekv keeps tokens in memory only.
    const range = raw.call("KV", "Range", { key: b("ro") }, withToken(before));
    if (target.mergekv) expect(await grpcError(range)).toEqual({ code: 16, details: "etcdserver: invalid auth token" });
    else expect((await range).count).toBe("1");
    await fails("etcdserver: user name is empty", "get", "ro");
    expect(await ok(...ALICE, "get", "ro", "--print-value-only")).toBe("read-only\n");
    await fails("etcdserver: permission denied", ...ALICE, "get", "other");
    await fails("etcdserver: authentication failed, invalid user ID or password", "--user", "alice:wrong", "get", "ro");
    expect(await ok(...ROOT, "role", "get", "app")).toBe("Role app\nKV Read:\n\t[app/, app0) (prefix app/)\n\tro\nKV Write:\n\t[app/, app0) (prefix app/)\n");
    expect(await ok(...ROOT, "user", "list")).toBe("alice\nbob\nroot\n");
  });

  test("auth disable: everyone may do everything again, and it stays disabled after a restart", async () => {
    expect(await ok(...ROOT, "auth", "disable")).toBe("Authentication Disabled\n");
    expect(await ok("get", "other", "--print-value-only")).toBe("secret\n");
    // etcdctl's Authenticate fails (logged), and it goes on without a token.
    const asBob = await etcdctl([...BOB, "put", "other", "changed"]);
    expect([asBob.code, asBob.stdout, asBob.stderr]).toEqual([0, "OK\n", expect.stringContaining("etcdserver: authentication is not enabled")]);
    await target.restart();
    raw.close();
    raw = rawClient(target.endpoint);
    expect((await raw.call("KV", "Range", { key: b("other") })).kvs[0].value.toString()).toBe("changed");
    expect(await ok("user", "list")).toBe("alice\nbob\nroot\n");
    expect(await grpcError(raw.call("Auth", "Authenticate", { name: "alice", password: "alicepw" })))
      .toEqual({ code: 9, details: "etcdserver: authentication is not enabled" });
  });
});
