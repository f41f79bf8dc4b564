/**
 * TLS on the client port with etcd's flags: etcdctl and the etcd3 client
 * over https://, and client certificates required with --client-cert-auth.
 */
import * as path from "node:path";
import { promises as fs } from "node:fs";
import * as https from "node:https";
import * as http2 from "node:http2";
import { http2Get, http2Post } from "../helpers/http";
import { Etcd3 } from "etcd3";
import { freePort, startServer, tempDir } from "../helpers/server";
import { run } from "../helpers/etcdctl";
import { makeCerts } from "../helpers/tls";

const CLI = path.join(__dirname, "..", "..", "bin", "mergekv.js");

test("https:// with --client-cert-auth: etcdctl and etcd3 with client certificates work, without them fail", async () => {
  const certs = await makeCerts(await tempDir("mergekv-tls-"));
  const port = await freePort();
  const server = await startServer({
    port,
    args: ["--listen-client-urls", `https://127.0.0.1:${port}`, "--cert-file", certs.serverCert, "--key-file", certs.serverKey, "--trusted-ca-file", certs.ca, "--client-cert-auth"],
  });
  const tlsArgs = ["--endpoints", `https://127.0.0.1:${port}`, "--cacert", certs.ca, "--cert", certs.clientCert, "--key", certs.clientKey];
  try {
    expect(server.output()).toContain("(TLS)");
    expect((await run("etcdctl", [...tlsArgs, "put", "secure", "yes"])).stdout).toContain("OK");
    expect((await run("etcdctl", [...tlsArgs, "get", "secure", "--print-value-only"])).stdout.trim()).toBe("yes");
    expect((await run("etcdctl", [...tlsArgs, "endpoint", "health"])).stderr + "").toContain("is healthy");
    const client = new Etcd3({
      hosts: `https://127.0.0.1:${port}`,
      credentials: { rootCertificate: await fs.readFile(certs.ca), certChain: await fs.readFile(certs.clientCert), privateKey: await fs.readFile(certs.clientKey) },
    });
    expect(await client.get("secure").string()).toBe("yes");
    client.close();
    const noClientCert = await run("etcdctl", ["--endpoints", `https://127.0.0.1:${port}`, "--cacert", certs.ca, "--command-timeout", "3s", "get", "secure"]);
    expect(noClientCert.code).not.toBe(0);
    const plain = await run("etcdctl", ["--endpoints", `127.0.0.1:${port}`, "--command-timeout", "3s", "get", "secure"]);
    expect(plain.code).not.toBe(0);
    // /health and /version on the TLS client port as on etcd's: over HTTP/1.1 (no ALPN h2) and over HTTP/2.
    const tls = { ca: await fs.readFile(certs.ca), cert: await fs.readFile(certs.clientCert), key: await fs.readFile(certs.clientKey) };
    const overHttp1 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      https.get({ host: "127.0.0.1", port, path: "/health", ...tls }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      }).on("error", reject);
    });
    expect([overHttp1.status, JSON.parse(overHttp1.body)]).toEqual([200, { health: "true", reason: "" }]);
    const session = http2.connect(`https://127.0.0.1:${port}`, tls);
    const overHttp2 = await http2Get(session, "/version");
    expect(JSON.parse(overHttp2)).toEqual({ etcdserver: "3.4.23", etcdcluster: "3.4.0" });
    // The gRPC gateway on the TLS client port, over HTTP/2 and over HTTP/1.1.
    const rangeBody = JSON.stringify({ key: Buffer.from("secure").toString("base64") });
    const gatewayH2 = await http2Post(session, "/v3/kv/range", rangeBody);
    session.close();
    expect([gatewayH2.status, JSON.parse(gatewayH2.body).kvs[0].value]).toEqual([200, Buffer.from("yes").toString("base64")]);
    const gatewayH1 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request({ host: "127.0.0.1", port, path: "/v3/kv/range", method: "POST", ...tls }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end(rangeBody);
    });
    expect([gatewayH1.status, JSON.parse(gatewayH1.body).count]).toEqual([200, "1"]);
  } finally {
    await server.stop();
  }
}, 90_000);

test("https:// without --cert-file and --key-file is refused with a clear message", async () => {
  const res = await run(process.execPath, [CLI, "serve", "--data-dir", await tempDir(), "--listen-client-urls", "https://127.0.0.1:0"]);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain("https:// needs --cert-file and --key-file");
});
