// KV checks: Put and Get (ranges, sorting, limits, revisions), Delete, Txn,
// Compact, and etcd's exact errors for bad requests.
package main

import (
	"fmt"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
)

func checkPutGet(t *T) {
	for i, k := range []string{"pg/c", "pg/a", "pg/b"} {
		t.put(k, fmt.Sprint(i))
	}
	t.put("pg0", "outside the prefix")
	first := t.get("pg/a")
	rev := t.put("pg/a", "one")

	all := t.get("pg/", clientv3.WithPrefix())
	t.equal("prefix", kvs(all), []string{"pg/a=one", "pg/b=2", "pg/c=0"})
	t.equal("prefix count", all.Count, int64(3))
	t.equal("header revision", all.Header.Revision, rev)

	// "one" > "2" > "0" byte-wise; the count ignores the limit.
	top := t.get("pg/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend), clientv3.WithLimit(2))
	t.equal("sorted by value, limit 2", kvs(top), []string{"pg/a=one", "pg/b=2"})
	t.equal("more", top.More, true)
	t.equal("count with limit", top.Count, int64(3))
	byMod := t.get("pg/", append(clientv3.WithLastRev(), clientv3.WithPrefix())...)
	t.equal("last modified", kvs(byMod), []string{"pg/a=one"})

	keys := t.get("pg/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	t.equal("keys only", kvs(keys), []string{"pg/a=", "pg/b=", "pg/c="})
	count := t.get("pg/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	t.equal("count only kvs", len(count.Kvs), 0)
	t.equal("count only", count.Count, int64(3))
	t.equal("from key", kvs(t.get("pg/b", clientv3.WithFromKey(), clientv3.WithKeysOnly(), clientv3.WithLimit(3))), []string{"pg/b=", "pg/c=", "pg0="})

	// A read at the revision before the second put sees the first value.
	old := t.get("pg/a", clientv3.WithRev(rev-1))
	t.equal("value at rev-1", kvs(old), []string{"pg/a=1"})
	now := t.get("pg/a").Kvs[0]
	t.equal("version", now.Version, int64(2))
	t.equal("mod revision", now.ModRevision, rev)
	t.equal("create revision", now.CreateRevision, first.Kvs[0].CreateRevision)
	t.equal("min mod revision", kvs(t.get("pg/", clientv3.WithPrefix(), clientv3.WithMinModRev(rev))), []string{"pg/a=one"})

	prev, err := t.c.Put(t.ctx, "pg/a", "two", clientv3.WithPrevKV())
	t.must(err, "put with prev kv")
	t.equal("prev kv", string(prev.PrevKv.Value), "one")
	t.equal("missing key", len(t.get("pg/missing").Kvs), 0)
}

func checkDelete(t *T) {
	for _, k := range []string{"dl/a", "dl/b", "dl/c"} {
		t.put(k, k+"!")
	}
	one, err := t.c.Delete(t.ctx, "dl/a", clientv3.WithPrevKV())
	t.must(err, "delete dl/a")
	t.equal("deleted", one.Deleted, int64(1))
	t.equal("prev kvs", string(one.PrevKvs[0].Value), "dl/a!")
	before := one.Header.Revision

	none, err := t.c.Delete(t.ctx, "dl/a")
	t.must(err, "delete a missing key")
	t.equal("deleted nothing", none.Deleted, int64(0))
	t.equal("no new revision", none.Header.Revision, before)

	rest, err := t.c.Delete(t.ctx, "dl/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	t.must(err, "delete prefix")
	t.equal("deleted by prefix", rest.Deleted, int64(2))
	t.equal("one revision for both", rest.Header.Revision, before+1)
	t.equal("prefix gone", t.get("dl/", clientv3.WithPrefix(), clientv3.WithCountOnly()).Count, int64(0))
}

func checkTxn(t *T) {
	rev := t.put("tx/k", "v1")
	cmp := clientv3.Compare
	ok, err := t.c.Txn(t.ctx).
		If(cmp(clientv3.Value("tx/k"), "=", "v1"), cmp(clientv3.Version("tx/k"), "=", 1), cmp(clientv3.ModRevision("tx/k"), "=", rev)).
		Then(clientv3.OpPut("tx/k", "v2"), clientv3.OpGet("tx/k")).
		Else(clientv3.OpGet("tx/none")).
		Commit()
	t.must(err, "txn on value, version and mod revision")
	t.equal("succeeded", ok.Succeeded, true)
	t.equal("responses", len(ok.Responses), 2)
	t.equal("get after put in txn", string(ok.Responses[1].GetResponseRange().Kvs[0].Value), "v2")
	t.equal("txn revision", ok.Header.Revision, rev+1)

	failed, err := t.c.Txn(t.ctx).
		If(cmp(clientv3.Value("tx/k"), "=", "v1")).
		Then(clientv3.OpPut("tx/k", "v3")).
		Else(clientv3.OpGet("tx/k")).
		Commit()
	t.must(err, "txn that fails its compare")
	t.equal("succeeded", failed.Succeeded, false)
	t.equal("else branch read", string(failed.Responses[0].GetResponseRange().Kvs[0].Value), "v2")
	t.equal("no write, no revision", failed.Header.Revision, rev+1)

	// Create-if-absent, the pattern locks use: only the first one wins.
	create := func() bool {
		r, err := t.c.Txn(t.ctx).If(cmp(clientv3.CreateRevision("tx/lock"), "=", 0)).Then(clientv3.OpPut("tx/lock", "me")).Commit()
		t.must(err, "create-if-absent")
		return r.Succeeded
	}
	t.equal("first create", create(), true)
	t.equal("second create", create(), false)

	// Greater/less compares, and a nested txn.
	nested, err := t.c.Txn(t.ctx).
		If(cmp(clientv3.Version("tx/k"), ">", 1), cmp(clientv3.Value("tx/k"), "<", "v3")).
		Then(clientv3.OpTxn([]clientv3.Cmp{cmp(clientv3.Value("tx/lock"), "!=", "me")}, nil, []clientv3.Op{clientv3.OpDelete("tx/lock")})).
		Commit()
	t.must(err, "nested txn")
	t.equal("outer succeeded", nested.Succeeded, true)
	inner := nested.Responses[0].GetResponseTxn()
	t.equal("inner failed", inner.Succeeded, false)
	t.equal("inner else deleted", inner.Responses[0].GetResponseDeleteRange().Deleted, int64(1))
}

func checkCompact(t *T) {
	r1 := t.put("cp/k", "v1")
	r2 := t.put("cp/k", "v2")
	_, err := t.c.Compact(t.ctx, r2, clientv3.WithCompactPhysical())
	t.must(err, "compact")

	_, err = t.c.Get(t.ctx, "cp/k", clientv3.WithRev(r1))
	t.wantErr("read below the compact revision", err, rpctypes.ErrCompacted)
	t.equal("read at the compact revision", kvs(t.get("cp/k", clientv3.WithRev(r2))), []string{"cp/k=v2"})
	_, err = t.c.Compact(t.ctx, r1)
	t.wantErr("compact again lower", err, rpctypes.ErrCompacted)
	_, err = t.c.Compact(t.ctx, r2+1000)
	t.wantErr("compact in the future", err, rpctypes.ErrFutureRev)
	_, err = t.c.Get(t.ctx, "cp/k", clientv3.WithRev(r2+1000))
	t.wantErr("read in the future", err, rpctypes.ErrFutureRev)
}

func checkErrors(t *T) {
	_, err := t.c.Put(t.ctx, "", "v")
	t.wantErr("put empty key", err, rpctypes.ErrEmptyKey)
	_, err = t.c.Get(t.ctx, "")
	t.wantErr("get empty key", err, rpctypes.ErrEmptyKey)
	_, err = t.c.Put(t.ctx, "er/missing", "", clientv3.WithIgnoreValue())
	t.wantErr("ignore value on a missing key", err, rpctypes.ErrKeyNotFound)

	many := make([]clientv3.Op, 129) // etcd's default --max-txn-ops is 128
	for i := range many {
		many[i] = clientv3.OpPut(fmt.Sprintf("er/%03d", i), "v")
	}
	_, err = t.c.Txn(t.ctx).Then(many...).Commit()
	t.wantErr("129 ops in a txn", err, rpctypes.ErrTooManyOps)
	_, err = t.c.Txn(t.ctx).Then(many[:128]...).Commit()
	t.must(err, "128 ops in a txn")
	_, err = t.c.Txn(t.ctx).Then(clientv3.OpPut("er/dup", "1"), clientv3.OpPut("er/dup", "2")).Commit()
	t.wantErr("two puts of one key", err, rpctypes.ErrDuplicateKey)
	_, err = t.c.Txn(t.ctx).Then(clientv3.OpPut("er/000", "1"), clientv3.OpDelete("er/", clientv3.WithPrefix())).Commit()
	t.wantErr("put inside a deleted range", err, rpctypes.ErrDuplicateKey)

	const unknown = clientv3.LeaseID(0x5eed)
	_, err = t.c.Revoke(t.ctx, unknown)
	t.wantErr("revoke an unknown lease", err, rpctypes.ErrLeaseNotFound)
	_, err = t.c.KeepAliveOnce(t.ctx, unknown)
	t.wantErr("keep an unknown lease alive", err, rpctypes.ErrLeaseNotFound)
	_, err = t.c.Put(t.ctx, "er/leased", "v", clientv3.WithLease(unknown))
	t.wantErr("put with an unknown lease", err, rpctypes.ErrLeaseNotFound)
	ttl, err := t.c.TimeToLive(t.ctx, unknown)
	t.must(err, "time to live of an unknown lease")
	t.equal("its ttl", ttl.TTL, int64(-1))
}
