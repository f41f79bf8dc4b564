// etcd's Lock and Election gRPC services (v3lockpb, v3electionpb), called
// through etcd's own generated stubs, as jetcd and Go programs call them:
// the server runs the recipes, the client only waits.
package main

import (
	"context"
	"fmt"
	"strings"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/etcdserver/api/v3lock/v3lockpb"
)

// grant returns a lease of 30 s, revoked when the check ends.
func grant(t *T) clientv3.LeaseID {
	l, err := t.c.Grant(t.ctx, 30)
	t.must(err, "grant")
	go func() {
		<-t.ctx.Done() // the check's context is over: revoke on a fresh one
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		defer cancel()
		t.c.Revoke(ctx, l.ID)
	}()
	return l.ID
}

func checkLockService(t *T) {
	locks := v3lockpb.NewLockClient(t.c.ActiveConnection())
	first, second := grant(t), grant(t)
	held, err := locks.Lock(t.ctx, &v3lockpb.LockRequest{Name: []byte("lksvc"), Lease: int64(first)})
	t.must(err, "first lock")
	t.equal("key", string(held.Key), fmt.Sprintf("lksvc/%x", first))
	waiting := async(func() error {
		_, err := locks.Lock(t.ctx, &v3lockpb.LockRequest{Name: []byte("lksvc"), Lease: int64(second)})
		return err
	})
	pending(t, "second lock while the first is held", waiting)
	_, err = locks.Unlock(t.ctx, &v3lockpb.UnlockRequest{Key: held.Key})
	t.must(err, "unlock")
	within(t, "second lock after the unlock", waiting)
	t.equal("keys left", kvs(t.get("lksvc/", clientv3.WithPrefix(), clientv3.WithKeysOnly())), []string{fmt.Sprintf("lksvc/%x=", second)})
}

func checkElectionService(t *T) {
	elections := v3electionpb.NewElectionClient(t.c.ActiveConnection())
	name := []byte("elsvc")
	_, err := elections.Leader(t.ctx, &v3electionpb.LeaderRequest{Name: name})
	if err == nil || !strings.Contains(err.Error(), "election: no leader") {
		t.fatalf("leader with none: want election: no leader, got %v", err)
	}
	id := grant(t)
	won, err := elections.Campaign(t.ctx, &v3electionpb.CampaignRequest{Name: name, Lease: int64(id), Value: []byte("a")})
	t.must(err, "campaign")
	t.equal("leader key", string(won.Leader.Key), fmt.Sprintf("elsvc/%x", id))
	t.equal("leader rev", won.Leader.Rev, won.Header.Revision)
	_, err = elections.Proclaim(t.ctx, &v3electionpb.ProclaimRequest{Leader: won.Leader, Value: []byte("b")})
	t.must(err, "proclaim")
	now, err := elections.Leader(t.ctx, &v3electionpb.LeaderRequest{Name: name})
	t.must(err, "leader")
	t.equal("leader value", string(now.Kv.Value), "b")
	_, err = elections.Resign(t.ctx, &v3electionpb.ResignRequest{Leader: won.Leader})
	t.must(err, "resign")
	_, err = elections.Leader(t.ctx, &v3electionpb.LeaderRequest{Name: name})
	if err == nil || !strings.Contains(err.Error(), "election: no leader") {
		t.fatalf("leader after resign: want election: no leader, got %v", err)
	}
}
