/**
 * Prometheus metrics (prom-client), recorded in the main thread where the
 * gRPC layer, the backend and persistence run, and served with /health and
 * /version on --listen-metrics-urls and on the client URLs, as etcd does.
 * The process's own metrics keep their standard names
 * (`process_resident_memory_bytes`, `process_cpu_seconds_total`, ...), as
 * etcd's do: `etcdctl check datascale` reads the first.
 */
import * as http from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const grpcRequests = new Counter({
  name: "mergekv_grpc_requests_total",
  help: "gRPC requests handled, by method and status code",
  labelNames: ["method", "code"] as const,
  registers: [registry],
});

export const grpcLatency = new Histogram({
  name: "mergekv_grpc_request_duration_seconds",
  help: "gRPC unary request latency, by method",
  labelNames: ["method"] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

export const applyBatch = new Histogram({
  name: "mergekv_backend_apply_batch_envelopes",
  help: "Write requests the backend applied in one batch",
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
  registers: [registry],
});

export const commitBatch = new Histogram({
  name: "mergekv_persist_commit_batch_ops",
  help: "Level operations per group commit",
  buckets: [1, 4, 16, 64, 256, 1024, 4096, 16384],
  registers: [registry],
});

export const commitDuration = new Histogram({
  name: "mergekv_persist_commit_duration_seconds",
  help: "Time of one (synced) group commit",
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers: [registry],
});

export const snapshots = new Counter({
  name: "mergekv_persist_snapshots_total",
  help: "Snapshots taken (automatic and on demand)",
  registers: [registry],
});

export interface Gauges {
  revision(): number;
  keys(): number;
  watchers(): number;
  leases(): number;
}

/** Gauges read from the live server when scraped. */
export function registerGauges(g: Gauges): void {
  const gauge = (name: string, help: string, read: () => number) => {
    registry.removeSingleMetric(name);
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  };
  gauge("mergekv_mvcc_revision", "The newest durable revision", g.revision);
  gauge("mergekv_mvcc_keys", "Keys with history in the backend's MVCC store", g.keys);
  gauge("mergekv_watchers", "Active watchers", g.watchers);
  gauge("mergekv_leases", "Granted leases", g.leases);
}

/** An answer of the plain-HTTP endpoints, whichever HTTP version asked. */
export interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** Answers a GET of `path`. */
export type HttpEndpoints = (path: string) => Promise<HttpAnswer>;

/**
 * etcd's plain-HTTP endpoints: /metrics (Prometheus), /health
 * ({"health":"true"} as etcd, false with an alarm or failed persistence) and
 * /version. Served on --listen-metrics-urls and, as etcd does, on every
 * client URL next to gRPC (`etcdctl check datascale` reads /metrics there;
 * probes ask /health).
 */
export function httpEndpoints(healthy: () => { ok: boolean; reason: string }, version: { server: string; cluster: string }): HttpEndpoints {
  const json = (status: number, value: unknown): HttpAnswer => ({ status, contentType: "application/json", body: JSON.stringify(value) });
  const text = (status: number, body: string): HttpAnswer => ({ status, contentType: "text/plain; charset=utf-8", body });
  const answer = async (path: string): Promise<HttpAnswer> => {
    if (path === "/metrics") return { status: 200, contentType: registry.contentType, body: await registry.metrics() };
    if (path === "/health") {
      const h = healthy();
      return json(h.ok ? 200 : 503, { health: String(h.ok), reason: h.reason });
    }
    if (path === "/version") return json(200, { etcdserver: version.server, etcdcluster: version.cluster });
    return text(404, "404 page not found: try /metrics, /health or /version\n");
  };
  // Never rejects: its callers only write the answer.
  return (path) => answer(path).catch((e: unknown) => text(500, String(e)));
}

/** The endpoints over HTTP/1.x. */
export function http1Listener(endpoints: HttpEndpoints): http.RequestListener {
  return (req, res) => {
    void endpoints(req.url ?? "/").then((a) => {
      res.writeHead(a.status, { "content-type": a.contentType });
      res.end(a.body);
    });
  };
}

/** Serves the endpoints on host:port (--listen-metrics-urls). */
export function serveMetrics(host: string, port: number, endpoints: HttpEndpoints): Promise<http.Server> {
  const server = http.createServer(http1Listener(endpoints));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
