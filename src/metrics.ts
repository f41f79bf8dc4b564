/**
 * Prometheus metrics (prom-client), recorded in the main thread where the
 * gRPC layer, the backend and persistence run, and served on
 * --listen-metrics-urls with /health, as etcd does.
 */
import * as http from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "mergekv_process_" });

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

/** Serves /metrics and /health ({"health":"true"} as etcd, false with an alarm or failed persistence). */
export function serveMetrics(host: string, port: number, healthy: () => { ok: boolean; reason: string }): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url === "/metrics") {
      registry.metrics().then((text) => {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(text);
      }, (e) => {
        res.writeHead(500);
        res.end(String(e));
      });
    } else if (req.url === "/health") {
      const h = healthy();
      res.writeHead(h.ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ health: String(h.ok), reason: h.reason }));
    } else {
      res.writeHead(404);
      res.end("not found: try /metrics or /health\n");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
