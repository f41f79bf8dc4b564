/**
 * Operations: /metrics (Prometheus) and /health on --listen-metrics-urls,
 * JSON logs at --log-level.
 */
import { Etcd3 } from "etcd3";
import { startServer, freePort } from "../helpers/server";

test("/metrics counts requests and batches; /health answers as etcd; logs are JSON lines", async () => {
  const metricsPort = await freePort();
  const server = await startServer({ args: ["--listen-metrics-urls", `http://127.0.0.1:${metricsPort}`, "--log-level", "info"] });
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  try {
    for (let i = 0; i < 5; i++) await client.put(`m${i}`).value("v").exec();
    await client.get("m0").string();
    const health = await fetch(`http://127.0.0.1:${metricsPort}/health`);
    expect([health.status, await health.json()]).toEqual([200, { health: "true", reason: "" }]);
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toMatch(/mergekv_grpc_requests_total\{method="KV\/Put",code="OK"\} 5/);
    expect(text).toMatch(/mergekv_grpc_requests_total\{method="KV\/Range",code="OK"\} 1/);
    expect(text).toMatch(/mergekv_mvcc_keys 5/);
    const rev = Number(/mergekv_mvcc_revision (\d+)/.exec(text)![1]);
    expect(rev).toBeGreaterThanOrEqual(6);
    expect(text).toMatch(/mergekv_persist_commit_duration_seconds_count [1-9]/);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/nope`)).status).toBe(404);
    const lines = server.output().split("\n").filter((l) => l.startsWith("{"));
    expect(lines.length).toBeGreaterThan(2);
    for (const l of lines) expect(JSON.parse(l)).toHaveProperty("msg");
  } finally {
    client.close();
    await server.stop();
  }
}, 60_000);
