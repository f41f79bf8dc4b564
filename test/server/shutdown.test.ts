/**
 * Graceful shutdown does not wait for long-lived streams: open lease
 * keep-alive streams end with UNAVAILABLE and the server exits promptly
 * (the grace period for in-flight calls is 5 s).
 */
import { Etcd3 } from "etcd3";
import { startServer } from "../helpers/server";

test("SIGTERM with open lease keep-alive streams exits well within the 5 s grace period", async () => {
  const server = await startServer();
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  const lease = client.lease(30); // keeps a LeaseKeepAlive stream open
  lease.on("lost", () => undefined);
  await lease.put("held").value("1").exec();
  await new Promise((r) => setTimeout(r, 1500)); // the client's keep-alive stream is open by now
  const started = Date.now();
  expect(await server.stop()).toBe(0);
  expect(Date.now() - started).toBeLessThan(4000);
  client.close();
}, 30_000);
