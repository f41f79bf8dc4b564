// Watch and lease checks.
package main

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	"go.etcd.io/etcd/mvcc/mvccpb"
)

// event renders a watch event as "PUT key=value (prev value)".
func event(e *clientv3.Event) string {
	s := fmt.Sprintf("%s %s=%s", e.Type, e.Kv.Key, e.Kv.Value)
	if e.PrevKv != nil {
		s += fmt.Sprintf(" (prev %s)", e.PrevKv.Value)
	}
	return s
}

// events reads n events from a watch channel, or fails the check.
func events(t *T, w clientv3.WatchChan, n int) []string {
	out := []string{}
	deadline := time.After(waitTimeout)
	for len(out) < n {
		select {
		case r, open := <-w:
			if !open {
				t.fatalf("watch closed after %v", out)
			}
			t.must(r.Err(), "watch")
			for _, e := range r.Events {
				out = append(out, event(e))
			}
		case <-deadline:
			t.fatalf("watch: %d of %d events after %v: %v", len(out), n, waitTimeout, out)
		}
	}
	return out
}

// created waits for the watch's created notification (WithCreatedNotify).
func created(t *T, w clientv3.WatchChan) {
	select {
	case r := <-w:
		t.equal("created", r.Created, true)
	case <-time.After(waitTimeout):
		t.fatalf("watch not created after %v", waitTimeout)
	}
}

func checkWatch(t *T) {
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	live := t.c.Watch(ctx, "wa/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	created(t, live)
	first := t.put("wa/a", "1")
	t.put("wa/a", "2")
	t.put("wb/outside", "x")
	_, err := t.c.Delete(t.ctx, "wa/a")
	t.must(err, "delete")
	t.equal("live events", events(t, live, 3), []string{"PUT wa/a=1", "PUT wa/a=2 (prev 1)", "DELETE wa/a= (prev 2)"})

	history := t.c.Watch(ctx, "wa/a", clientv3.WithRev(first))
	t.equal("history", events(t, history, 3), []string{"PUT wa/a=1", "PUT wa/a=2", "DELETE wa/a="})
	deletes := t.c.Watch(ctx, "wa/", clientv3.WithPrefix(), clientv3.WithRev(first), clientv3.WithFilterPut())
	t.equal("put filtered out", events(t, deletes, 1), []string{"DELETE wa/a="})

	// Events carry their revisions.
	select {
	case r := <-t.c.Watch(ctx, "wa/a", clientv3.WithRev(first+1)):
		t.equal("events from first+1", len(r.Events) > 0, true)
		t.equal("event revision", r.Events[0].Kv.ModRevision, first+1)
		t.equal("event type", r.Events[0].Type, mvccpb.PUT)
	case <-time.After(waitTimeout):
		t.fatalf("no events from revision %d", first+1)
	}
}

func checkWatchCompacted(t *T) {
	r1 := t.put("wc/k", "a")
	r2 := t.put("wc/k", "b")
	_, err := t.c.Compact(t.ctx, r2)
	t.must(err, "compact")
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()

	select {
	case r, open := <-t.c.Watch(ctx, "wc/k", clientv3.WithRev(r1)):
		t.equal("response", open, true)
		t.equal("compact revision", r.CompactRevision, r2)
		t.equal("canceled", r.Canceled, true)
		t.wantErr("error", r.Err(), rpctypes.ErrCompacted)
	case <-time.After(waitTimeout):
		t.fatalf("no response to a watch below the compact revision")
	}
	// The compact revision itself is still watchable.
	at := t.c.Watch(ctx, "wc/k", clientv3.WithRev(r2))
	t.equal("watch at the compact revision", events(t, at, 1), []string{"PUT wc/k=b"})
}

func checkLease(t *T) {
	g, err := t.c.Grant(t.ctx, 60)
	t.must(err, "grant")
	t.equal("granted ttl", g.TTL, int64(60))
	t.put("ls/a", "leased", clientv3.WithLease(g.ID))
	t.equal("lease on the key", t.get("ls/a").Kvs[0].Lease, int64(g.ID))

	ka, err := t.c.KeepAliveOnce(t.ctx, g.ID)
	t.must(err, "keep alive once")
	t.equal("keep-alive id", ka.ID, g.ID)
	t.equal("keep-alive ttl", ka.TTL, int64(60))

	ttl, err := t.c.TimeToLive(t.ctx, g.ID, clientv3.WithAttachedKeys())
	t.must(err, "time to live")
	t.equal("granted ttl", ttl.GrantedTTL, int64(60))
	if ttl.TTL <= 0 || ttl.TTL > 60 {
		t.fatalf("remaining ttl %d not in (0, 60]", ttl.TTL)
	}
	t.equal("attached keys", fmt.Sprintf("%s", ttl.Keys), "[ls/a]")

	leases, err := t.c.Leases(t.ctx)
	t.must(err, "leases")
	listed := false
	for _, l := range leases.Leases {
		listed = listed || l.ID == g.ID
	}
	t.equal("lease listed", listed, true)

	// A keep-alive stream answers at once with the lease's TTL.
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	stream, err := t.c.KeepAlive(ctx, g.ID)
	t.must(err, "keep alive")
	select {
	case r := <-stream:
		t.equal("stream keep-alive ttl", r != nil && r.TTL == 60, true)
	case <-time.After(waitTimeout):
		t.fatalf("no keep-alive response")
	}

	_, err = t.c.Revoke(t.ctx, g.ID)
	t.must(err, "revoke")
	t.equal("attached key deleted", len(t.get("ls/a").Kvs), 0)
	ttl, err = t.c.TimeToLive(t.ctx, g.ID)
	t.must(err, "time to live after revoke")
	t.equal("revoked ttl", ttl.TTL, int64(-1))
}

func checkLeaseExpiry(t *T) {
	g, err := t.c.Grant(t.ctx, 2) // etcd's smallest TTL with its default timings
	t.must(err, "grant")
	t.put("le/a", "1", clientv3.WithLease(g.ID))
	t.put("le/b", "2", clientv3.WithLease(g.ID))
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	w := t.c.Watch(ctx, "le/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	created(t, w)

	// Expiry deletes both keys in one revision: one response, two events.
	select {
	case r := <-w:
		t.must(r.Err(), "watch")
		t.equal("expiry events", len(r.Events), 2)
		t.equal("one revision", r.Events[0].Kv.ModRevision, r.Events[1].Kv.ModRevision)
	case <-time.After(waitTimeout):
		t.fatalf("lease did not expire within %v", waitTimeout)
	}
	t.equal("keys after expiry", len(t.get("le/", clientv3.WithPrefix()).Kvs), 0)
	_, err = t.c.KeepAliveOnce(t.ctx, g.ID)
	t.wantErr("keep an expired lease alive", err, rpctypes.ErrLeaseNotFound)
}
