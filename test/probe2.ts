import { startEtcd } from "./helpers/etcd";
import { startServer } from "./helpers/server";
import { rawClient, b } from "./helpers/grpc";

async function probe(name: string, endpoint: string) {
  const c = rawClient(endpoint);
  const show = async (what: string, p: Promise<any>) => {
    try { const r = await p; console.log(name, what, "OK", JSON.stringify(r, (k, v) => (v && v.type === "Buffer" ? Buffer.from(v.data).toString("latin1") : k === "cluster_id" || k === "member_id" || k === "raft_term" ? undefined : v)).slice(0, 600)); }
    catch (e: any) { console.log(name, what, "ERR", e.code, JSON.stringify(e.details)); }
  };
  const puts = (n: number, pre = "k") => Array.from({ length: n }, (_, i) => ({ request_put: { key: b(pre + i), value: b("v") } }));
  await show("nested 1+127", c.call("KV", "Txn", { success: [{ request_txn: { success: puts(127) } }] }).then(r => r.header));
  await show("nested 1+128", c.call("KV", "Txn", { success: [{ request_txn: { success: puts(128) } }] }).then(r => r.header));
  await show("nested 2+126", c.call("KV", "Txn", { success: [{ request_range: { key: b("a") } }, { request_txn: { success: puts(126) } }] }).then(r => r.header));
  await show("nested 2+127", c.call("KV", "Txn", { success: [{ request_range: { key: b("a") } }, { request_txn: { success: puts(127) } }] }).then(r => r.header));
  await show("empty op", c.call("KV", "Txn", { success: [{}] }));
  await show("put x", c.call("KV", "Put", { key: b("x"), value: b("old") }));
  await show("put+range", c.call("KV", "Txn", { success: [{ request_range: { key: b("x") } }, { request_put: { key: b("x"), value: b("new"), prev_kv: true } }, { request_range: { key: b("x") } }] }));
  await show("del+range", c.call("KV", "Txn", { success: [{ request_delete_range: { key: b("x"), prev_kv: true } }, { request_range: { key: b("x") } }] }));
  await show("put y1 y2 y3", Promise.all([c.call("KV", "Put", { key: b("y1"), value: b("c") }), c.call("KV", "Put", { key: b("y2"), value: b("a") })]));
  await show("put y3", c.call("KV", "Put", { key: b("y3"), value: b("b") }));
  await show("put y2 again", c.call("KV", "Put", { key: b("y2"), value: b("a2") }));
  await show("sort value asc limit 2", c.call("KV", "Range", { key: b("y"), range_end: b("z"), sort_target: "Value", sort_order: "Ascend", limit: 2 }));
  await show("sort version desc", c.call("KV", "Range", { key: b("y"), range_end: b("z"), sort_target: "Version", sort_order: "Descend" }));
  await show("sort mod none", c.call("KV", "Range", { key: b("y"), range_end: b("z"), sort_target: "Mod", sort_order: "None" }));
  await show("sort key desc keys_only", c.call("KV", "Range", { key: b("y"), range_end: b("z"), sort_target: "Key", sort_order: "Descend", keys_only: true }));
  await show("count_only", c.call("KV", "Range", { key: b("y"), range_end: b("z"), count_only: true }));
  await show("count_only limit 1", c.call("KV", "Range", { key: b("y"), range_end: b("z"), count_only: true, limit: 1 }));
  await show("min_mod filter", c.call("KV", "Range", { key: b("y"), range_end: b("z"), min_mod_revision: 1000 }));
  await show("compare range all version>0", c.call("KV", "Txn", { compare: [{ key: b("y"), range_end: b("z"), target: "Version", result: "Greater", version: 0 }] }).then(r => r.succeeded));
  await show("compare range all version>1", c.call("KV", "Txn", { compare: [{ key: b("y"), range_end: b("z"), target: "Version", result: "Greater", version: 1 }] }).then(r => r.succeeded));
  await show("compare missing value", c.call("KV", "Txn", { compare: [{ key: b("nokey"), target: "Value", result: "Equal", value: b("") }] }).then(r => r.succeeded));
  await show("compare missing value !=", c.call("KV", "Txn", { compare: [{ key: b("nokey"), target: "Value", result: "NotEqual", value: b("x") }] }).then(r => r.succeeded));
  await show("compare missing create==0", c.call("KV", "Txn", { compare: [{ key: b("nokey"), target: "Create", result: "Equal", create_revision: 0 }] }).then(r => r.succeeded));
  await show("compare empty range", c.call("KV", "Txn", { compare: [{ key: b("q"), range_end: b("r"), target: "Value", result: "Equal", value: b("") }] }).then(r => r.succeeded));
  await show("readonly big txn", c.call("KV", "Txn", { success: [{ request_range: { key: b("y"), range_end: Buffer.alloc(1600000, 122) } }] }).then(r => r.header));
  await show("delete big range_end", c.call("KV", "DeleteRange", { key: b("nothing"), range_end: Buffer.alloc(1600000, 122) }).then(r => r.header));
  await show("range rev 1", c.call("KV", "Range", { key: b("y1"), revision: 1 }));
  await show("compact physical", c.call("KV", "Compact", { revision: 2, physical: true }));
  await show("put with ignore lease+value", c.call("KV", "Put", { key: b("y1"), ignore_value: true, ignore_lease: true, prev_kv: true }));
  await show("get y1", c.call("KV", "Range", { key: b("y1") }));
  await show("range from key \\0", c.call("KV", "Range", { key: b("\0"), range_end: b("\0"), count_only: true }));
  await show("range end < key", c.call("KV", "Range", { key: b("z"), range_end: b("a") }));
  await show("del end < key", c.call("KV", "DeleteRange", { key: b("z"), range_end: b("a") }));
  await show("txn with only compare fail no ops", c.call("KV", "Txn", { compare: [{ key: b("y1"), target: "Value", result: "Equal", value: b("zz") }] }));
  c.close();
}

(async () => {
  const which = process.argv[2];
  if (which === "etcd") { const e = await startEtcd(); try { await probe("etcd", e.endpoint); } finally { await e.stop(); } }
  else { const s = await startServer(); try { await probe("mkv ", s.endpoint); } finally { await s.stop(); } }
})();
