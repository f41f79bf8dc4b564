import { startEtcd } from "./helpers/etcd";
import { startServer } from "./helpers/server";
import { rawClient, grpcError, b } from "./helpers/grpc";

async function probe(name: string, endpoint: string) {
  const c = rawClient(endpoint);
  const show = async (what: string, p: Promise<any>) => {
    try { const r = await p; console.log(name, what, "OK", JSON.stringify(r, (k, v) => (v && v.type === "Buffer" ? Buffer.from(v.data).toString("latin1") : v))); }
    catch (e: any) { console.log(name, what, "ERR", e.code, JSON.stringify(e.details)); }
  };
  await show("put a", c.call("KV", "Put", { key: b("a"), value: b("1") }));
  await show("range empty", c.call("KV", "Range", { key: b("") }));
  await show("put empty", c.call("KV", "Put", { key: b(""), value: b("1") }));
  await show("del empty", c.call("KV", "DeleteRange", { key: b("") }));
  await show("ignore_value missing", c.call("KV", "Put", { key: b("nope"), ignore_value: true }));
  await show("ignore_value value", c.call("KV", "Put", { key: b("a"), value: b("x"), ignore_value: true }));
  await show("ignore_value missing+value", c.call("KV", "Put", { key: b("nope"), value: b("x"), ignore_value: true }));
  await show("ignore_lease missing", c.call("KV", "Put", { key: b("nope"), value: b("x"), ignore_lease: true }));
  await show("ignore_lease+lease", c.call("KV", "Put", { key: b("a"), value: b("x"), ignore_lease: true, lease: 5 }));
  await show("lease", c.call("KV", "Put", { key: b("a"), value: b("x"), lease: 12345 }));
  await show("range future", c.call("KV", "Range", { key: b("a"), revision: 1000 }));
  await show("compact future", c.call("KV", "Compact", { revision: 1000 }));
  await show("txn range future", c.call("KV", "Txn", { success: [{ request_range: { key: b("a"), revision: 1000 } }] }));
  await show("txn put lease", c.call("KV", "Txn", { success: [{ request_put: { key: b("a"), value: b("y"), lease: 77 } }] }));
  await show("txn put ignore missing", c.call("KV", "Txn", { success: [{ request_put: { key: b("zz"), ignore_value: true } }] }));
  await show("txn put empty key", c.call("KV", "Txn", { success: [{ request_put: { key: b(""), value: b("1") } }] }));
  await show("txn compare empty key", c.call("KV", "Txn", { compare: [{ key: b(""), target: "Version", result: "Equal", version: 0 }] }));
  await show("txn range empty key", c.call("KV", "Txn", { success: [{ request_range: { key: b("") } }] }));
  for (let i = 0; i < 4; i++) await show("put a", c.call("KV", "Put", { key: b("a"), value: b("v" + i) }));
  await show("compact 3", c.call("KV", "Compact", { revision: 3 }));
  await show("compact 3 again", c.call("KV", "Compact", { revision: 3 }));
  await show("compact 2", c.call("KV", "Compact", { revision: 2 }));
  await show("range rev 2", c.call("KV", "Range", { key: b("a"), revision: 2 }));
  await show("range rev 3", c.call("KV", "Range", { key: b("a"), revision: 3 }));
  await show("txn range compacted", c.call("KV", "Txn", { success: [{ request_range: { key: b("a"), revision: 2 } }] }));
  await show("compact 0", c.call("KV", "Compact", { revision: 0 }));
  await show("compact -1", c.call("KV", "Compact", { revision: -1 }));
  await show("range rev -1", c.call("KV", "Range", { key: b("a"), revision: -1 }));
  const big = (n: number) => Buffer.alloc(n, 120);
  await show("put 1.5MiB-100", c.call("KV", "Put", { key: b("big"), value: big(1.5 * 1024 * 1024 - 100) }).then(r => ({ rev: r.header.revision })));
  await show("put 1.5MiB+10", c.call("KV", "Put", { key: b("big"), value: big(1.5 * 1024 * 1024 + 10) }));
  await show("put 2MiB-100", c.call("KV", "Put", { key: b("big"), value: big(2 * 1024 * 1024 - 100) }));
  await show("put 2MiB+10", c.call("KV", "Put", { key: b("big"), value: big(2 * 1024 * 1024 + 10) }));
  await show("put 3MiB", c.call("KV", "Put", { key: b("big"), value: big(3 * 1024 * 1024) }));
  await show("range big", c.call("KV", "Range", { key: b("big"), range_end: big(1.6 * 1024 * 1024) }));
  const puts = (n: number, pre = "k") => Array.from({ length: n }, (_, i) => ({ request_put: { key: b(pre + i), value: b("v") } }));
  await show("txn 128", c.call("KV", "Txn", { success: puts(128) }).then(r => r.header));
  await show("txn 129", c.call("KV", "Txn", { success: puts(129) }));
  await show("txn 129 failure", c.call("KV", "Txn", { failure: puts(129) }));
  await show("txn 129 compare", c.call("KV", "Txn", { compare: Array.from({ length: 129 }, () => ({ key: b("a"), target: "Version", result: "Greater", version: 0 })) }));
  await show("txn 129 ranges", c.call("KV", "Txn", { success: Array.from({ length: 129 }, () => ({ request_range: { key: b("a") } })) }));
  await show("txn 64+65", c.call("KV", "Txn", { success: puts(64), failure: puts(65, "x") }).then(r => r.header));
  await show("txn dup put", c.call("KV", "Txn", { success: [{ request_put: { key: b("d"), value: b("1") } }, { request_put: { key: b("d"), value: b("2") } }] }));
  await show("txn dup in failure", c.call("KV", "Txn", { failure: [{ request_put: { key: b("d"), value: b("1") } }, { request_put: { key: b("d"), value: b("2") } }] }));
  await show("txn put+del", c.call("KV", "Txn", { success: [{ request_put: { key: b("d"), value: b("1") } }, { request_delete_range: { key: b("d") } }] }));
  await show("txn del+del", c.call("KV", "Txn", { success: [{ request_delete_range: { key: b("d") } }, { request_delete_range: { key: b("d") } }] }));
  await show("txn put in range del", c.call("KV", "Txn", { success: [{ request_delete_range: { key: b("c"), range_end: b("e") } }, { request_put: { key: b("d"), value: b("1") } }] }));
  await show("txn range+put", c.call("KV", "Txn", { success: [{ request_range: { key: b("d") } }, { request_put: { key: b("d"), value: b("1") } }] }));
  await show("txn then/else same key", c.call("KV", "Txn", { success: [{ request_put: { key: b("d"), value: b("1") } }], failure: [{ request_put: { key: b("d"), value: b("1") } }] }));
  await show("txn nested dup", c.call("KV", "Txn", { success: [{ request_put: { key: b("d"), value: b("1") } }, { request_txn: { success: [{ request_put: { key: b("d"), value: b("1") } }] } }] }));
  await show("txn nested 129", c.call("KV", "Txn", { success: [{ request_txn: { success: puts(129) } }] }));
  await show("status", c.call("Maintenance", "Status", {}));
  await show("member list", c.call("Cluster", "MemberList", {}));
  await show("del none", c.call("KV", "DeleteRange", { key: b("nothing") }).then(r => r.header.revision));
  c.close();
}

(async () => {
  const which = process.argv[2];
  if (which === "etcd") { const e = await startEtcd(); try { await probe("etcd", e.endpoint); } finally { await e.stop(); } }
  else { const s = await startServer(); try { await probe("mkv ", s.endpoint); } finally { await s.stop(); } }
})();
