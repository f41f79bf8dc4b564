// The concurrency package (mutex, election, STM) and namespaces: the client
// libraries built on leases, txns and watches.
package main

import (
	"context"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/clientv3/namespace"
)

// stmWorkers and stmIncrements: enough concurrent STM transactions that
// some conflict and retry.
const stmWorkers = 4
const stmIncrements = 5

// session starts a concurrency session, closed (its lease revoked) when the
// check ends.
func session(t *T) *concurrency.Session {
	s, err := concurrency.NewSession(t.c, concurrency.WithTTL(30), concurrency.WithContext(t.ctx))
	t.must(err, "session")
	go func() { <-t.ctx.Done(); s.Close() }()
	return s
}

// owns reports whether the mutex's owner compare holds.
func owns(t *T, m *concurrency.Mutex) bool {
	r, err := t.c.Txn(t.ctx).If(m.IsOwner()).Commit()
	t.must(err, "owner txn")
	return r.Succeeded
}

func checkMutex(t *T) {
	m1 := concurrency.NewMutex(session(t), "mx/")
	m2 := concurrency.NewMutex(session(t), "mx/")
	t.must(m1.Lock(t.ctx), "first lock")
	second := async(func() error { return m2.Lock(t.ctx) })
	pending(t, "second lock while the first is held", second)
	t.equal("first owns", owns(t, m1), true)
	first := t.get("mx/", append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...)
	t.equal("owner key is the oldest", string(first.Kvs[0].Key), m1.Key())

	t.must(m1.Unlock(t.ctx), "first unlock")
	within(t, "second lock after the unlock", second)
	t.equal("second owns", owns(t, m2), true)
	t.equal("first owns no more", owns(t, m1), false)
	t.must(m2.Unlock(t.ctx), "second unlock")
	t.equal("no waiters left", t.get("mx/", clientv3.WithPrefix(), clientv3.WithCountOnly()).Count, int64(0))
}

// observed waits for the next leader value an Observe channel reports.
func observed(t *T, ch <-chan clientv3.GetResponse) string {
	select {
	case r, open := <-ch:
		t.equal("observe open", open, true)
		return string(r.Kvs[0].Value)
	case <-time.After(waitTimeout):
		t.fatalf("no leader observed after %v", waitTimeout)
		return ""
	}
}

// leader reads the election's current leader value.
func leader(t *T, e *concurrency.Election) string {
	r, err := e.Leader(t.ctx)
	t.must(err, "leader")
	return string(r.Kvs[0].Value)
}

func checkElection(t *T) {
	e1 := concurrency.NewElection(session(t), "el/")
	e2 := concurrency.NewElection(session(t), "el/")
	watcher := concurrency.NewElection(session(t), "el/")
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	observe := watcher.Observe(ctx)

	t.must(e1.Campaign(t.ctx, "alpha"), "first campaign")
	t.equal("observed", observed(t, observe), "alpha")
	t.equal("leader", leader(t, watcher), "alpha")
	second := async(func() error { return e2.Campaign(t.ctx, "beta") })
	pending(t, "second campaign while the first leads", second)

	t.must(e1.Proclaim(t.ctx, "alpha-2"), "proclaim")
	t.equal("observed after proclaim", observed(t, observe), "alpha-2")
	t.must(e1.Resign(t.ctx), "resign")
	within(t, "second campaign after the resign", second)
	t.equal("observed after resign", observed(t, observe), "beta")
	t.equal("new leader", leader(t, e1), "beta")
	t.must(e2.Resign(t.ctx), "second resign")
	_, err := watcher.Leader(t.ctx)
	t.equal("no leader", err, concurrency.ErrElectionNoLeader)
}

func checkSTM(t *T) {
	t.put("stm/counter", "0")
	increment := func(s concurrency.STM) error {
		n, err := strconv.Atoi(s.Get("stm/counter"))
		if err != nil {
			return err
		}
		s.Put("stm/counter", strconv.Itoa(n+1))
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, stmWorkers*stmIncrements)
	for w := 0; w < stmWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < stmIncrements; i++ {
				_, err := concurrency.NewSTM(t.c, increment, concurrency.WithAbortContext(t.ctx))
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.must(err, "stm")
	}
	final := t.get("stm/counter").Kvs[0]
	t.equal("counter", string(final.Value), strconv.Itoa(stmWorkers*stmIncrements))
	t.equal("one put per commit", final.Version, int64(stmWorkers*stmIncrements+1))
}

func checkNamespace(t *T) {
	kv := namespace.NewKV(t.c.KV, "ns/")
	watcher := namespace.NewWatcher(t.c.Watcher, "ns/")
	lease := namespace.NewLease(t.c.Lease, "ns/")
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	w := watcher.Watch(ctx, "k", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	created(t, w)

	_, err := kv.Put(t.ctx, "k1", "v1")
	t.must(err, "namespaced put")
	t.put("k1", "outside")
	t.equal("stored under the prefix", kvs(t.get("ns/k1")), []string{"ns/k1=v1"})
	got, err := kv.Get(t.ctx, "k", clientv3.WithPrefix())
	t.must(err, "namespaced get")
	t.equal("namespaced keys", kvs(got), []string{"k1=v1"})

	txn, err := kv.Txn(t.ctx).
		If(clientv3.Compare(clientv3.Value("k1"), "=", "v1")).
		Then(clientv3.OpPut("k2", "v2"), clientv3.OpGet("k", clientv3.WithPrefix())).
		Commit()
	t.must(err, "namespaced txn")
	t.equal("txn succeeded", txn.Succeeded, true)
	t.equal("txn keys", len(txn.Responses[1].GetResponseRange().Kvs), 2)
	t.equal("txn key without prefix", string(txn.Responses[1].GetResponseRange().Kvs[1].Key), "k2")
	t.equal("namespaced events", events(t, w, 2), []string{"PUT k1=v1", "PUT k2=v2"})

	g, err := lease.Grant(t.ctx, 60)
	t.must(err, "namespaced grant")
	_, err = kv.Put(t.ctx, "k3", "leased", clientv3.WithLease(g.ID))
	t.must(err, "namespaced put with lease")
	ttl, err := lease.TimeToLive(t.ctx, g.ID, clientv3.WithAttachedKeys())
	t.must(err, "namespaced time to live")
	t.equal("attached keys without prefix", len(ttl.Keys) == 1 && string(ttl.Keys[0]) == "k3", true)
	_, err = lease.Revoke(t.ctx, g.ID)
	t.must(err, "namespaced revoke")

	del, err := kv.Delete(t.ctx, "k", clientv3.WithPrefix())
	t.must(err, "namespaced delete")
	t.equal("deleted in the namespace", del.Deleted, int64(2))
	t.equal("outside untouched", kvs(t.get("k1")), []string{"k1=outside"})
}
