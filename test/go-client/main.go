// Command go-client runs etcd's own Go client (clientv3 of etcd 3.4) against
// a server and prints one line per check, "ok NAME" or "FAIL NAME: reason";
// it exits 1 if any check failed. test/integration/go-clientv3.test.ts runs
// it against mergekv and, as the reference, a real etcd: the same checks must
// pass on both.
//
// It expects a fresh server: checks write under their own key prefixes,
// compare revisions only with each other, and run in order. "auth" runs last
// and disables auth again when it is done.
//
// Build (GOPATH mode, Debian's golang-etcd-server-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o go-client .
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// checkTimeout bounds one check, waits included.
const checkTimeout = 30 * time.Second

// waitTimeout bounds one wait for an event that must come (a watch event, a lock).
const waitTimeout = 10 * time.Second

// quietWait is how long something that must not happen (a contended lock
// being granted) is given to happen anyway.
const quietWait = 500 * time.Millisecond

// T is what a check gets: a client, the check's context and the endpoints.
// Its assertion methods end the check by panicking with a failure, which
// runCheck recovers; this keeps the checks free of error plumbing.
type T struct {
	ctx       context.Context
	c         *clientv3.Client
	endpoints []string
}

type failure struct{ reason string }

func (t *T) fatalf(format string, a ...interface{}) { panic(failure{fmt.Sprintf(format, a...)}) }

// must fails the check if err is not nil.
func (t *T) must(err error, what string) {
	if err != nil {
		t.fatalf("%s: %v", what, err)
	}
}

// equal fails the check unless got and want are deeply equal.
func (t *T) equal(what string, got, want interface{}) {
	if !reflect.DeepEqual(got, want) {
		t.fatalf("%s: got %v, want %v", what, got, want)
	}
}

// wantErr fails the check unless err is the etcd error want (the clientv3
// error values compare equal when code and message are etcd's own).
func (t *T) wantErr(what string, err, want error) {
	if rpctypes.Error(err) != want {
		t.fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// put writes key=value and returns the revision of the write.
func (t *T) put(key, value string, opts ...clientv3.OpOption) int64 {
	r, err := t.c.Put(t.ctx, key, value, opts...)
	t.must(err, "put "+key)
	return r.Header.Revision
}

// get reads and fails the check on an error.
func (t *T) get(key string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	r, err := t.c.Get(t.ctx, key, opts...)
	t.must(err, "get "+key)
	return r
}

// newClient connects to the endpoints; username may be empty.
func newClient(endpoints []string, username, password string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithBlock()},
		Username:    username,
		Password:    password,
	})
}

// client connects as another client for the rest of the check.
func (t *T) client(username, password string) *clientv3.Client {
	c, err := newClient(t.endpoints, username, password)
	t.must(err, "connect as "+username)
	go func() { <-t.ctx.Done(); c.Close() }()
	return c
}

// kvs renders key=value pairs, the form the checks compare.
func kvs(r *clientv3.GetResponse) []string {
	out := []string{}
	for _, kv := range r.Kvs {
		out = append(out, string(kv.Key)+"="+string(kv.Value))
	}
	return out
}

// within fails the check unless ch yields a value within waitTimeout.
func within(t *T, what string, ch <-chan error) {
	select {
	case err := <-ch:
		t.must(err, what)
	case <-time.After(waitTimeout):
		t.fatalf("%s: nothing after %v", what, waitTimeout)
	}
}

// pending fails the check if ch yields a value within quietWait.
func pending(t *T, what string, ch <-chan error) {
	select {
	case err := <-ch:
		t.fatalf("%s happened too early (err %v)", what, err)
	case <-time.After(quietWait):
	}
}

// async runs f in a goroutine; the channel yields its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

type check struct {
	name string
	run  func(t *T)
}

// checks run in this order; see the check* functions in checks_*.go.
var checks = []check{
	{"kv-put-get", checkPutGet},
	{"kv-delete", checkDelete},
	{"txn", checkTxn},
	{"compact", checkCompact},
	{"watch", checkWatch},
	{"watch-compacted", checkWatchCompacted},
	{"lease", checkLease},
	{"lease-expiry", checkLeaseExpiry},
	{"mutex", checkMutex},
	{"election", checkElection},
	{"stm", checkSTM},
	{"lock-service", checkLockService},
	{"election-service", checkElectionService},
	{"namespace", checkNamespace},
	{"maintenance", checkMaintenance},
	{"health", checkHealth},
	{"errors", checkErrors},
	{"auth", checkAuth},
}

// runCheck runs one check and returns "" or why it failed.
func runCheck(c *clientv3.Client, endpoints []string, ch check) (reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	defer func() {
		switch p := recover().(type) {
		case nil:
		case failure:
			reason = p.reason
		default:
			reason = fmt.Sprintf("panic: %v", p)
		}
	}()
	ch.run(&T{ctx: ctx, c: c, endpoints: endpoints})
	return ""
}

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated host:port list")
	only := flag.String("run", "", "run only the checks whose names contain this")
	list := flag.Bool("list", false, "print the check names and exit")
	flag.Parse()
	if *list {
		for _, ch := range checks {
			fmt.Println(ch.name)
		}
		return
	}
	eps := strings.Split(*endpoints, ",")
	c, err := newClient(eps, "", "")
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	defer c.Close()
	failed := 0
	for _, ch := range checks {
		if !strings.Contains(ch.name, *only) {
			continue
		}
		start := time.Now()
		if reason := runCheck(c, eps, ch); reason != "" {
			failed++
			fmt.Printf("FAIL %s: %s\n", ch.name, reason)
		} else {
			fmt.Printf("ok %s (%v)\n", ch.name, time.Since(start).Round(time.Millisecond))
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}
