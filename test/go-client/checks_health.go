package main

// gRPC's standard health service, which etcd 3.4 registers next to its own
// (the empty service name, SERVING), called through grpc-go's own stubs.
// checkAuth calls it without a user while auth is on.

import (
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func checkHealth(t *T) {
	health := healthpb.NewHealthClient(t.c.ActiveConnection())
	r, err := health.Check(t.ctx, &healthpb.HealthCheckRequest{})
	t.must(err, "Check")
	t.equal("status", r.Status, healthpb.HealthCheckResponse_SERVING)

	_, err = health.Check(t.ctx, &healthpb.HealthCheckRequest{Service: "etcdserverpb.KV"})
	t.equal("Check of another service name", []interface{}{status.Code(err), status.Convert(err).Message()}, []interface{}{codes.NotFound, "unknown service"})

	// Watch answers at once and stays open: a second answer only on a change.
	stream, err := health.Watch(t.ctx, &healthpb.HealthCheckRequest{})
	t.must(err, "Watch")
	first, err := stream.Recv()
	t.must(err, "Watch's first answer")
	t.equal("watched status", first.Status, healthpb.HealthCheckResponse_SERVING)
	unknown, err := health.Watch(t.ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	t.must(err, "Watch of another service name")
	second, err := unknown.Recv()
	t.must(err, "its first answer")
	t.equal("watched status of another name", second.Status, healthpb.HealthCheckResponse_SERVICE_UNKNOWN)
}
