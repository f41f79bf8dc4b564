// Maintenance, cluster and auth checks.
package main

import (
	"strings"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func checkMaintenance(t *T) {
	rev := t.put("mt/k", "v")
	st, err := t.c.Status(t.ctx, t.endpoints[0])
	t.must(err, "status")
	t.equal("version is 3.4", strings.HasPrefix(st.Version, "3.4."), true)
	t.equal("leader is this member", st.Leader, st.Header.MemberId)
	t.equal("revision at least the last put's", st.Header.Revision >= rev, true)
	t.equal("db size positive", st.DbSize > 0, true)

	ml, err := t.c.MemberList(t.ctx)
	t.must(err, "member list")
	t.equal("members", len(ml.Members), 1)
	m := ml.Members[0]
	t.equal("member id", m.ID, st.Header.MemberId)
	t.equal("member name", m.Name, "default")
	t.equal("client urls", m.ClientURLs, []string{"http://" + t.endpoints[0]})

	alarms, err := t.c.AlarmList(t.ctx)
	t.must(err, "alarm list")
	t.equal("alarms", len(alarms.Alarms), 0)
	h1, err := t.c.HashKV(t.ctx, t.endpoints[0], rev)
	t.must(err, "hash kv")
	h2, err := t.c.HashKV(t.ctx, t.endpoints[0], rev)
	t.must(err, "hash kv again")
	t.equal("hash is stable", h1.Hash, h2.Hash)
	t.put("mt/k", "changed")
	h3, err := t.c.HashKV(t.ctx, t.endpoints[0], 0)
	t.must(err, "hash kv at the head")
	t.equal("hash changes with a write", h3.Hash != h1.Hash, true)
}

// checkAuth turns auth on with root and a user "alice" allowed readwrite on
// au/, checks what alice, a bad password and a client without a user get,
// and turns auth off again.
func checkAuth(t *T) {
	_, err := t.c.AuthEnable(t.ctx)
	t.wantErr("enable without root", err, rpctypes.ErrRootUserNotExist)
	_, err = t.c.RoleAdd(t.ctx, "root")
	t.must(err, "add role root")
	_, err = t.c.UserAdd(t.ctx, "root", "rootpw")
	t.must(err, "add user root")
	_, err = t.c.UserGrantRole(t.ctx, "root", "root")
	t.must(err, "grant root")
	_, err = t.c.RoleAdd(t.ctx, "app")
	t.must(err, "add role app")
	_, err = t.c.RoleGrantPermission(t.ctx, "app", "au/", clientv3.GetPrefixRangeEnd("au/"), clientv3.PermissionType(clientv3.PermReadWrite))
	t.must(err, "grant readwrite on au/")
	_, err = t.c.UserAdd(t.ctx, "alice", "alicepw")
	t.must(err, "add user alice")
	_, err = t.c.UserGrantRole(t.ctx, "alice", "app")
	t.must(err, "grant app to alice")
	_, err = t.c.UserAdd(t.ctx, "alice", "again")
	t.wantErr("add alice twice", err, rpctypes.ErrUserAlreadyExist)
	t.put("secret", "s")
	_, err = t.c.AuthEnable(t.ctx)
	t.must(err, "enable")

	alice := t.client("alice", "alicepw")
	_, err = alice.Put(t.ctx, "au/x", "mine")
	t.must(err, "alice puts in au/")
	r, err := alice.Get(t.ctx, "au/", clientv3.WithPrefix())
	t.must(err, "alice reads au/")
	t.equal("alice's read", kvs(r), []string{"au/x=mine"})
	_, err = alice.Put(t.ctx, "secret", "hers")
	t.wantErr("alice writes outside au/", err, rpctypes.ErrPermissionDenied)
	_, err = alice.Get(t.ctx, "secret")
	t.wantErr("alice reads outside au/", err, rpctypes.ErrPermissionDenied)
	_, err = alice.Txn(t.ctx).Then(clientv3.OpPut("au/y", "1"), clientv3.OpGet("secret")).Commit()
	t.wantErr("alice's txn touching outside au/", err, rpctypes.ErrPermissionDenied)
	_, err = alice.UserAdd(t.ctx, "mallory", "pw")
	t.wantErr("alice adds a user", err, rpctypes.ErrPermissionDenied)

	_, err = newClient(t.endpoints, "alice", "wrong")
	t.wantErr("wrong password", err, rpctypes.ErrAuthFailed)
	_, err = t.c.Get(t.ctx, "au/x")
	t.wantErr("no user", err, rpctypes.ErrUserEmpty)
	healthy, err := healthpb.NewHealthClient(t.c.ActiveConnection()).Check(t.ctx, &healthpb.HealthCheckRequest{})
	t.must(err, "gRPC health without a user")
	t.equal("its status", healthy.Status, healthpb.HealthCheckResponse_SERVING)

	root := t.client("root", "rootpw")
	t.equal("root reads anything", len(mustGet(t, root, "secret").Kvs), 1)
	_, err = root.AuthDisable(t.ctx)
	t.must(err, "disable")
	t.equal("open again", kvs(t.get("secret")), []string{"secret=s"})
}

// mustGet reads key with client c.
func mustGet(t *T, c *clientv3.Client, key string) *clientv3.GetResponse {
	r, err := c.Get(t.ctx, key)
	t.must(err, "get "+key)
	return r
}
