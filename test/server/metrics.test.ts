/**
 * Operations: /metrics (Prometheus) and /health on --listen-metrics-urls,
 * JSON logs at --log-level.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import { Etcd3 } from "etcd3";
import * as http2 from "node:http2";
import { http2Get } from "../helpers/http";
import * as net from "node:net";
import { startServer, freePort } from "../helpers/server";
import { framed, services } from "../helpers/grpc";

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

test("the client port answers /health, /version and /metrics over HTTP/1.1 and HTTP/2 as etcd's does, next to gRPC", async () => {
  const server = await startServer();
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  try {
    await client.put("k").value("v").exec();
    const health = await fetch(`http://${server.endpoint}/health`);
    expect([health.status, await health.json()]).toEqual([200, { health: "true", reason: "" }]);
    expect(await (await fetch(`http://${server.endpoint}/version`)).json()).toEqual({ etcdserver: "3.4.23", etcdcluster: "3.4.0" });
    const metrics = await (await fetch(`http://${server.endpoint}/metrics`)).text();
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+$/m); // the standard name etcdctl check datascale reads
    expect(metrics).toMatch(/mergekv_grpc_requests_total\{method="KV\/Put",code="OK"\} 1/);
    expect((await fetch(`http://${server.endpoint}/nope`)).status).toBe(404);
    // HTTP/2 with prior knowledge: a plain GET, and gRPC on the same connection's port as before.
    const session = http2.connect(`http://${server.endpoint}`);
    const version = await http2Get(session, "/version");
    session.close();
    expect(JSON.parse(version).etcdserver).toBe("3.4.23");
    expect(await client.get("k").string()).toBe("v");
    // An HTTP/1.1 request whose first byte alone could begin HTTP/2's preface ("P" of PUT/PRI) waits for more.
    const raw = net.connect(Number(server.endpoint.split(":")[1]), "127.0.0.1");
    await new Promise((r) => raw.once("connect", r));
    raw.write("P");
    await new Promise((r) => setTimeout(r, 100));
    raw.write("UT /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    const reply = await new Promise<string>((resolve) => {
      let text = "";
      raw.on("data", (d) => (text += d));
      raw.on("end", () => resolve(text));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(reply).toContain('{"health":"true","reason":""}');
  } finally {
    client.close();
    await server.stop();
  }
}, 60_000);

test("watchers are released when their client's connection goes away (the watchers gauge falls back to 0)", async () => {
  const metricsPort = await freePort();
  const server = await startServer({ args: ["--listen-metrics-urls", `http://127.0.0.1:${metricsPort}`] });
  const gauge = async () => Number(/^mergekv_watchers (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text())![1]);
  const waitFor = async (want: number) => {
    const deadline = Date.now() + 10_000;
    let got = await gauge();
    while (got !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      got = await gauge();
    }
    return got;
  };
  // A raw HTTP/2 connection, so the test can drop it as a crashed client would: no cancel, no GOAWAY.
  const session = http2.connect(`http://${server.endpoint}`);
  const create = (services().Watch as any).service.Watch.requestSerialize as (m: object) => Buffer;
  try {
    const STREAMS = 5;
    const PER_STREAM = 4;
    for (let s = 0; s < STREAMS; s++) {
      const stream = session.request({ ":method": "POST", ":path": "/etcdserverpb.Watch/Watch", "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => undefined);
      for (let w = 0; w < PER_STREAM; w++) {
        const m = create({ create_request: { key: Buffer.from(`w${s}-${w}`) } });
        stream.write(framed(m));
      }
    }
    expect(await waitFor(STREAMS * PER_STREAM)).toBe(STREAMS * PER_STREAM);
    session.destroy();
    expect(await waitFor(0)).toBe(0);
  } finally {
    session.destroy();
    await server.stop();
  }
}, 60_000);
