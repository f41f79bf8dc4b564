"""Python's etcd clients against a server: one line per check, "ok NAME" or
"FAIL NAME: reason"; exit status 1 if any failed.

Two clients, both as Debian packages them (python3-etcd3, python3-etcd3gw):
- etcd3 (python-etcd3 0.12), over gRPC, the most used Python client;
- etcd3gw (OpenStack's), over etcd's JSON gateway (/v3/...).

test/integration/python-client.test.ts runs it against mergekv and, as the
reference, a real etcd: every check must pass on both. It expects a fresh
server; checks write under their own prefixes, compare revisions only with
each other and run in order; "etcd3.auth" runs last and turns auth off again.

    python3 checks.py --endpoint 127.0.0.1:2379 --server etcd|mergekv [--list] [--only NAME]
"""

import argparse
import io
import sys
import threading
import time
import traceback

import etcd3
import etcd3.etcdrpc as rpc
from etcd3.etcdrpc import auth_pb2
import etcd3gw
import grpc
from etcd3gw.client import Etcd3Client

# One wait for something that must come (an event, a lock, an expiry).
WAIT_S = 10.0
# How long something that must not happen (a held lock granted) is given.
QUIET_S = 0.5


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def equal(what, got, want):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


def grpc_error(fn, code, details):
    """Runs fn and fails unless it raises the gRPC error (code, details)."""
    try:
        fn()
    except grpc.RpcError as e:
        equal("error", (e.code(), e.details()), (code, details))
        return
    raise Failure(f"no error; want {code} {details!r}")


def wait_for(what, cond, timeout=WAIT_S):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise Failure(f"timed out waiting for {what}")


def collect(events, n):
    """Reads n events on a thread of its own; returns the thread and the list they go to."""
    got = []

    def read():
        for e in events:
            got.append(e)
            if len(got) == n:
                break

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.5)  # the watch is created (both clients send it on their own thread) before what it must see
    return reader, got


CHECKS = []


def checked(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn
    return register


class Ctx:
    def __init__(self, host, port, server):
        self.host, self.port, self.server = host, port, server
        self.c = etcd3.client(host=host, port=port, timeout=WAIT_S)
        self.gw = Etcd3Client(host=host, port=port, api_path="/v3/", timeout=WAIT_S)

    def client(self, **kw):
        c = etcd3.client(host=self.host, port=self.port, timeout=WAIT_S, **kw)
        # The client sends its token twice: as metadata and as call credentials.
        # grpcio refuses call credentials on a channel without TLS, so only
        # the metadata goes (what etcd reads either way).
        c.call_credentials = None
        return c


# --- etcd3 (gRPC) ----------------------------------------------------------

@checked("etcd3.kv")
def kv(t):
    c = t.c
    r1 = c.put("/py/kv/a", "1").header.revision
    value, meta = c.get("/py/kv/a")
    equal("value", value, b"1")
    equal("revisions of a new key", (meta.create_revision, meta.mod_revision, meta.version), (r1, r1, 1))
    prev = c.put("/py/kv/a", "2", prev_kv=True)
    equal("prev_kv", prev.prev_kv.value, b"1")
    _, meta = c.get("/py/kv/a")
    equal("revisions after an overwrite", (meta.create_revision, meta.mod_revision, meta.version), (r1, prev.header.revision, 2))
    equal("missing key", c.get("/py/kv/none"), (None, None))
    c.put("/py/kv/b", "3")
    c.put("/py/kv/c", "4")
    equal("get_prefix", [(v, m.key) for v, m in c.get_prefix("/py/kv/")], [(b"2", b"/py/kv/a"), (b"3", b"/py/kv/b"), (b"4", b"/py/kv/c")])
    equal("get_prefix descending", [m.key for _, m in c.get_prefix("/py/kv/", sort_order="descend")], [b"/py/kv/c", b"/py/kv/b", b"/py/kv/a"])
    equal("get_range", [m.key for _, m in c.get_range("/py/kv/a", "/py/kv/c")], [b"/py/kv/a", b"/py/kv/b"])
    equal("put_if_not_exists on a new key", c.put_if_not_exists("/py/kv/d", "5"), True)
    equal("put_if_not_exists on a live key", c.put_if_not_exists("/py/kv/d", "6"), False)
    equal("delete", c.delete("/py/kv/d"), True)
    equal("delete of a missing key", c.delete("/py/kv/d"), False)
    deleted = c.delete("/py/kv/c", prev_kv=True, return_response=True)
    equal("delete prev_kv", [kv.value for kv in deleted.prev_kvs], [b"4"])
    equal("delete_prefix", c.delete_prefix("/py/kv/").deleted, 2)
    equal("get_prefix after", list(c.get_prefix("/py/kv/")), [])


@checked("etcd3.txn")
def txn(t):
    c = t.c
    tx = c.transactions
    c.put("/py/txn/k", "v1")
    ok, res = c.transaction(
        compare=[tx.value("/py/txn/k") == "v1", tx.version("/py/txn/k") > 0, tx.create("/py/txn/none") == 0],
        success=[tx.put("/py/txn/k", "v2"), tx.get("/py/txn/k")],
        failure=[tx.delete("/py/txn/k")],
    )
    equal("succeeded", ok, True)
    equal("success's get sees the put", [v for v, _ in res[1]], [b"v2"])
    ok, res = c.transaction(compare=[tx.value("/py/txn/k") == "v1"], success=[tx.delete("/py/txn/k")], failure=[tx.get("/py/txn/k")])
    equal("failed compare", ok, False)
    equal("failure's get", [v for v, _ in res[0]], [b"v2"])
    equal("replace with the wrong value", c.replace("/py/txn/k", "v1", "v3"), False)
    equal("replace", c.replace("/py/txn/k", "v2", "v3"), True)
    equal("after replace", c.get("/py/txn/k")[0], b"v3")
    ops = [tx.put(f"/py/txn/many/{i}", "x") for i in range(129)]
    grpc_error(lambda: c.transaction(compare=[], success=ops, failure=[]), grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")
    grpc_error(lambda: c.transaction(compare=[], success=[tx.put("/py/txn/d", "1"), tx.put("/py/txn/d", "2")], failure=[]),
               grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")


@checked("etcd3.watch")
def watch(t):
    c = t.c
    events, cancel = c.watch("/py/watch/k")
    reader, got = collect(events, 2)
    r1 = c.put("/py/watch/k", "1").header.revision
    c.put("/py/watch/other", "x")
    c.delete("/py/watch/k")
    reader.join(WAIT_S)
    cancel()
    equal("events", [(type(e).__name__, e.key, e.value, e.mod_revision) for e in got],
          [("PutEvent", b"/py/watch/k", b"1", r1), ("DeleteEvent", b"/py/watch/k", b"", r1 + 2)])

    # History from a start revision, with prev_kv, over a prefix.
    events, cancel = c.watch_prefix("/py/watch/", start_revision=r1, prev_kv=True)
    replay = [next(events) for _ in range(3)]
    cancel()
    equal("replayed", [(type(e).__name__, e.key) for e in replay],
          [("PutEvent", b"/py/watch/k"), ("PutEvent", b"/py/watch/other"), ("DeleteEvent", b"/py/watch/k")])
    equal("prev_kv of the delete", replay[2].prev_value, b"1")

    # A callback watch, cancelled by id.
    seen = []
    wid = c.add_watch_callback("/py/watch/cb", lambda r: seen.extend(r.events))
    c.put("/py/watch/cb", "1")
    wait_for("the callback's event", lambda: len(seen) == 1)
    c.cancel_watch(wid)
    c.put("/py/watch/cb", "2")
    time.sleep(QUIET_S)
    equal("events after cancel", len(seen), 1)

    try:
        c.watch_once("/py/watch/quiet", timeout=QUIET_S)
        raise Failure("watch_once returned without an event")
    except etcd3.exceptions.WatchTimedOut:
        pass


@checked("etcd3.watch-compacted")
def watch_compacted(t):
    c = t.c
    r1 = c.put("/py/wc/k", "1").header.revision
    r2 = c.put("/py/wc/k", "2").header.revision
    c.compact(r2)
    errors = []
    wid = c.add_watch_callback("/py/wc/k", errors.append, start_revision=r1)
    wait_for("the compacted watch's answer", lambda: len(errors) == 1)
    try:
        c.cancel_watch(wid)
    except Exception:
        pass  # the server has cancelled it already
    err = errors[0]
    check(isinstance(err, etcd3.exceptions.RevisionCompactedError), f"got {err!r}, want RevisionCompactedError")
    equal("compacted revision", err.compacted_revision, r2)
    # The client's get ignores a revision: the request goes through its own stub.
    grpc_error(lambda: c.kvstub.Range(rpc.RangeRequest(key=b"/py/wc/k", revision=r1), WAIT_S), grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
    grpc_error(lambda: c.compact(r2 + 1000), grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")


@checked("etcd3.lease")
def lease(t):
    c = t.c
    le = c.lease(30)
    equal("granted TTL", le.granted_ttl, 30)
    check(0 < le.remaining_ttl <= 30, f"remaining TTL {le.remaining_ttl}")
    c.put("/py/lease/a", "1", lease=le)
    c.put("/py/lease/b", "2", lease=le)
    equal("keys", sorted(le.keys), [b"/py/lease/a", b"/py/lease/b"])
    equal("refresh", le.refresh()[0].TTL, 30)
    equal("unknown lease's TTL", c.get_lease_info(0x7ABCDEF).TTL, -1)
    equal("refresh of an unknown lease", [r.TTL for r in c.refresh_lease(0x7ABCDEF)], [0])
    grpc_error(lambda: c.put("/py/lease/c", "3", lease=0x7ABCDEF), grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
    grpc_error(lambda: c.revoke_lease(0x7ABCDEF), grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
    given = c.lease(30, lease_id=0x5EED)
    equal("a chosen id", given.id, 0x5EED)
    try:  # the client turns FAILED_PRECONDITION into an exception without the message
        c.lease(30, lease_id=0x5EED)
        raise Failure("a lease id granted twice")
    except etcd3.exceptions.PreconditionFailedError:
        pass
    given.revoke()
    le.revoke()
    equal("keys of a revoked lease", list(c.get_prefix("/py/lease/")), [])
    equal("TTL is at least 2", c.lease(1).granted_ttl, 2)


@checked("etcd3.lease-expiry")
def lease_expiry(t):
    c = t.c
    le = c.lease(2)
    c.put("/py/expiry/k", "1", lease=le)
    events, cancel = c.watch("/py/expiry/k")
    got = next(events)  # blocks until the expiry deletes the key
    cancel()
    equal("expiry's event", (type(got).__name__, got.key), ("DeleteEvent", b"/py/expiry/k"))
    equal("the key", c.get("/py/expiry/k"), (None, None))
    equal("the lease's TTL", c.get_lease_info(le.id).TTL, -1)


@checked("etcd3.lock")
def lock(t):
    # Its Lock: a create-if-absent Txn on /locks/NAME with a lease. Waiting for
    # a held lock is not checked: in Debian's package that path calls tenacity
    # with an older callback signature and raises TypeError on any server.
    c = t.c
    first = c.lock("py-lock", ttl=30)
    check(first.acquire(timeout=WAIT_S), "the free lock was not acquired")
    check(first.is_acquired(), "is_acquired after acquire")
    value, meta = c.get("/locks/py-lock")
    check(value is not None and meta.lease_id == first.lease.id, "the lock key and its lease")
    second = c.lock("py-lock", ttl=30)
    check(not second.is_acquired(), "a second holder's is_acquired")
    equal("refresh", first.refresh()[0].TTL, 30)
    check(first.release(), "release")
    check(not first.is_acquired(), "is_acquired after release")
    equal("the lock key after release", c.get("/locks/py-lock"), (None, None))
    with c.lock("py-lock", ttl=30) as held:
        check(held.is_acquired(), "the lock as a context manager")
    check(not held.is_acquired(), "released on leaving the block")


@checked("etcd3.maintenance")
def maintenance(t):
    c = t.c
    members = list(c.members)
    equal("members", len(members), 1)
    status = c.status()
    check(status.version.startswith("3.4."), f"version {status.version}")
    equal("leader", status.leader.id, members[0].id)
    check(status.db_size > 0, f"db size {status.db_size}")
    check(members[0].client_urls == [f"http://{t.host}:{t.port}"], f"client URLs {members[0].client_urls}")
    h1, h2 = c.hash(), c.hash()
    equal("hash twice, no write between", h1, h2)
    c.put("/py/maint/k", "1")
    check(c.hash() != h1, "the hash did not change after a write")
    c.defragment()
    buf = io.BytesIO()
    c.snapshot(buf)
    check(len(buf.getvalue()) > 0, "an empty snapshot")
    equal("the key after defragment", c.get("/py/maint/k")[0], b"1")


@checked("etcd3.alarms")
def alarms(t):
    c = t.c
    equal("no alarm", list(c.list_alarms()), [])
    raised = c.create_alarm()
    equal("raised", [(a.member_id, a.alarm_type) for a in raised], [(0, rpc.NOSPACE)])
    equal("listed", [(a.member_id, a.alarm_type) for a in c.list_alarms()], [(0, rpc.NOSPACE)])
    grpc_error(lambda: c.put("/py/alarm/k", "1"), grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")
    grpc_error(lambda: c.lease(30), grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")
    equal("a delete goes on", c.delete("/py/alarm/none"), False)
    equal("a read goes on", c.get("/py/alarm/k"), (None, None))
    equal("status answers during the alarm", c.status().version.startswith("3.4."), True)
    equal("disarmed", [(a.member_id, a.alarm_type) for a in c.disarm_alarm()], [(0, rpc.NOSPACE)])
    equal("disarmed again", list(c.disarm_alarm()), [])
    c.put("/py/alarm/k", "1")


@checked("etcd3.alarm-corrupt")
def alarm_corrupt(t):
    # The client raises only NOSPACE; CORRUPT goes through its own stub.
    c = t.c
    alarm = lambda action: c.maintenancestub.Alarm(rpc.AlarmRequest(action=action, memberID=7, alarm=rpc.CORRUPT), WAIT_S)
    r1 = c.put("/py/corrupt/k", "1").header.revision
    equal("raised", [(a.memberID, a.alarm) for a in alarm(rpc.AlarmRequest.ACTIVATE).alarms], [(7, rpc.CORRUPT)])
    equal("raised again: the same alarm", [(a.memberID, a.alarm) for a in alarm(rpc.AlarmRequest.ACTIVATE).alarms], [(7, rpc.CORRUPT)])
    equal("listed by type", [a.memberID for a in c.maintenancestub.Alarm(rpc.AlarmRequest(action=rpc.AlarmRequest.GET, alarm=rpc.CORRUPT), WAIT_S).alarms], [7])
    # This client's StatusResponse predates its errors field; the gateway's has it.
    equal("status errors", t.gw.status().get("errors"), ["memberID:7 alarm:CORRUPT "])
    corrupt = (grpc.StatusCode.DATA_LOSS, "etcdserver: corrupt cluster")
    grpc_error(lambda: c.put("/py/corrupt/k", "2"), *corrupt)
    grpc_error(lambda: c.delete("/py/corrupt/k"), *corrupt)
    grpc_error(lambda: c.transaction(compare=[], success=[c.transactions.delete("/py/corrupt/k")], failure=[]), *corrupt)
    grpc_error(lambda: c.lease(30), *corrupt)
    grpc_error(lambda: c.compact(r1), *corrupt)
    equal("a read goes on", c.get("/py/corrupt/k")[0], b"1")
    ok, res = c.transaction(compare=[], success=[c.transactions.get("/py/corrupt/k")], failure=[])
    equal("a read-only txn goes on", [v for v, _ in res[0]], [b"1"])
    equal("disarmed", [(a.memberID, a.alarm) for a in alarm(rpc.AlarmRequest.DEACTIVATE).alarms], [(7, rpc.CORRUPT)])
    equal("status errors after", t.gw.status().get("errors"), None)
    c.put("/py/corrupt/k", "2")


@checked("etcd3.auth")
def auth(t):
    c = t.c
    a = rpc.AuthStub(c.channel)
    a.UserAdd(rpc.AuthUserAddRequest(name="root", password="rootpw"), timeout=WAIT_S)
    a.RoleAdd(rpc.AuthRoleAddRequest(name="root"), timeout=WAIT_S)
    a.UserGrantRole(rpc.AuthUserGrantRoleRequest(user="root", role="root"), timeout=WAIT_S)
    a.UserAdd(rpc.AuthUserAddRequest(name="alice", password="alicepw"), timeout=WAIT_S)
    a.RoleAdd(rpc.AuthRoleAddRequest(name="py-reader"), timeout=WAIT_S)
    perm = auth_pb2.Permission(permType=auth_pb2.Permission.READWRITE, key=b"/py/auth/", range_end=b"/py/auth0")
    a.RoleGrantPermission(rpc.AuthRoleGrantPermissionRequest(name="py-reader", perm=perm), timeout=WAIT_S)
    a.UserGrantRole(rpc.AuthUserGrantRoleRequest(user="alice", role="py-reader"), timeout=WAIT_S)
    a.AuthEnable(rpc.AuthEnableRequest(), timeout=WAIT_S)
    root = alice = None
    try:
        grpc_error(lambda: c.put("/py/auth/k", "1"), grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: user name is empty")
        try:
            t.client(user="alice", password="wrong")
            raise Failure("a wrong password authenticated")
        except grpc.RpcError as e:
            equal("wrong password", (e.code(), e.details()), (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password"))
        alice = t.client(user="alice", password="alicepw")
        alice.put("/py/auth/k", "1")
        equal("alice reads her range", alice.get("/py/auth/k")[0], b"1")
        grpc_error(lambda: alice.put("/py/other", "1"), grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied")
        # Maintenance is root's. etcd 3.4 answers its own auth errors untranslated
        # there (code Unknown, "auth: ..."); mergekv answers as the KV calls do.
        hash_as = lambda who: c.maintenancestub.Hash(rpc.HashRequest(), WAIT_S, metadata=who and who.metadata)
        if t.server == "etcd":
            grpc_error(lambda: hash_as(None), grpc.StatusCode.UNKNOWN, "auth: user name is empty")
            grpc_error(lambda: hash_as(alice), grpc.StatusCode.UNKNOWN, "auth: permission denied")
        else:
            grpc_error(lambda: hash_as(None), grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: user name is empty")
            grpc_error(lambda: hash_as(alice), grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied")
        root = t.client(user="root", password="rootpw")
        root.put("/py/other", "1")
        check(hash_as(root).hash > 0, "root's hash")
    finally:
        if root is None:
            root = t.client(user="root", password="rootpw")
        rpc.AuthStub(root.channel).AuthDisable(rpc.AuthDisableRequest(), timeout=WAIT_S, metadata=root.metadata)
        root.close()
        if alice:
            alice.close()
    c.put("/py/auth/after", "1")  # anonymous again


# --- etcd3gw (JSON gateway) ------------------------------------------------

@checked("etcd3gw.kv")
def gw_kv(t):
    g = t.gw
    equal("put", g.put("/py/gw/a", "1"), True)
    equal("get", g.get("/py/gw/a"), [b"1"])
    [(value, meta)] = g.get("/py/gw/a", metadata=True)
    equal("metadata", (value, meta["key"], meta["version"]), (b"1", b"/py/gw/a", "1"))
    g.put("/py/gw/b", "2")
    equal("get_prefix", [(v, m["key"]) for v, m in g.get_prefix("/py/gw/")], [(b"1", b"/py/gw/a"), (b"2", b"/py/gw/b")])
    equal("get_prefix descending", [m["key"] for _, m in g.get_prefix("/py/gw/", sort_order="descend")], [b"/py/gw/b", b"/py/gw/a"])
    equal("replace with the wrong value", g.replace("/py/gw/a", "0", "9"), False)
    equal("replace", g.replace("/py/gw/a", "1", "9"), True)
    equal("after replace", g.get("/py/gw/a"), [b"9"])
    equal("delete", g.delete("/py/gw/a"), True)
    equal("delete of a missing key", g.delete("/py/gw/a"), False)
    equal("missing key", g.get("/py/gw/a"), [])
    result = g.transaction({
        "compare": [{"key": "L3B5L2d3L2I=", "result": "EQUAL", "target": "VALUE", "value": "Mg=="}],  # /py/gw/b == "2"
        "success": [{"request_delete_range": {"key": "L3B5L2d3L2I="}}],
        "failure": [],
    })
    equal("txn", (result["succeeded"], result["responses"][0]["response_delete_range"]["deleted"]), (True, "1"))
    g.put("/py/gw/c", "3")
    equal("delete_prefix", g.delete_prefix("/py/gw/"), True)
    equal("delete_prefix of nothing", g.delete_prefix("/py/gw/"), False)


@checked("etcd3gw.lease")
def gw_lease(t):
    g = t.gw
    le = g.lease(30)
    check(0 < le.ttl() <= 30, f"TTL {le.ttl()}")
    equal("refresh", le.refresh(), 30)
    g.put("/py/gwlease/k", "1", lease=le)
    equal("keys", le.keys(), [b"/py/gwlease/k"])
    equal("revoke", le.revoke(), True)
    equal("the key after revoke", g.get("/py/gwlease/k"), [])
    equal("TTL of a revoked lease", le.ttl(), -1)


@checked("etcd3gw.lock")
def gw_lock(t):
    g = t.gw
    first = g.lock("py-gw-lock", ttl=30)
    equal("acquire", first.acquire(), True)
    equal("is_acquired", first.is_acquired(), True)
    second = g.lock("py-gw-lock", ttl=30)
    equal("acquire of a held lock", second.acquire(), False)
    equal("release", first.release(), True)
    equal("acquire after release", second.acquire(), True)
    equal("refresh", second.refresh(), 30)
    equal("release", second.release(), True)


@checked("etcd3gw.watch")
def gw_watch(t):
    g = t.gw
    events, cancel = g.watch_prefix("/py/gwwatch/")
    reader, got = collect(events, 2)
    g.put("/py/gwwatch/a", "1")
    g.delete("/py/gwwatch/a")
    reader.join(WAIT_S)
    cancel()
    equal("events", [(e.get("type", "PUT"), e["kv"]["key"], e["kv"].get("value")) for e in got],
          [("PUT", b"/py/gwwatch/a", b"1"), ("DELETE", b"/py/gwwatch/a", None)])
    threading.Timer(0.5, lambda: g.put("/py/gwwatch/once", "2")).start()
    event = g.watch_once("/py/gwwatch/once", timeout=WAIT_S)
    equal("watch_once", event["kv"]["value"], b"2")


@checked("etcd3gw.status")
def gw_status(t):
    g = t.gw
    status = g.status()
    check(status["version"].startswith("3.4."), f"version {status['version']}")
    equal("leader", status["leader"], status["header"]["member_id"])
    members = g.members()
    equal("members", [(m["ID"], m["clientURLs"]) for m in members], [(status["header"]["member_id"], [f"http://{t.host}:{t.port}"])])


# Auth runs last: it turns auth on and off.
CHECKS.sort(key=lambda c: c[0] == "etcd3.auth")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", default="127.0.0.1:2379")
    p.add_argument("--list", action="store_true")
    p.add_argument("--only")
    p.add_argument("--server", choices=["etcd", "mergekv"], required=True, help="what is tested, for the documented differences")
    args = p.parse_args()
    if args.list:
        print("\n".join(name for name, _ in CHECKS))
        return 0
    host, port = args.endpoint.rsplit(":", 1)
    t = Ctx(host, int(port), args.server)
    failed = 0
    for name, fn in CHECKS:
        if args.only and name != args.only:
            continue
        try:
            fn(t)
            print(f"ok {name}", flush=True)
        except Failure as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # an unexpected error is a failure with its trace
            failed += 1
            line = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__][-1]
            what = f"{e.code()} {e.details()}" if isinstance(e, grpc.RpcError) else (str(e).splitlines() or [""])[0]
            print(f"FAIL {name}: {type(e).__name__}: {what} (checks.py line {line})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
