/**
 * A gRPC server that speaks etcd's KV service and does nothing: every Put,
 * Range and Txn is answered at once with a valid, pre-encoded response.
 * Driving it measures the load generator's own ceiling. It is written on
 * node:http2 directly (not grpc-js) so that it costs as little CPU as
 * possible: on 2 cores the server's cost would otherwise lower the ceiling.
 * Run as its own process:
 *   node dist/bench/noop-server.js PORT
 */
import * as http2 from "node:http2";
import { services, Msg } from "./wire";
import { frame } from "./h2";

const HEADER = { cluster_id: "1", member_id: "1", revision: "1", raft_term: "1" };

function encoded(method: string, body: Msg): Buffer {
  const m = services().KV[method] as unknown as { responseSerialize: (m: Msg) => Buffer };
  return frame(m.responseSerialize({ header: HEADER, ...body }));
}

function main(): void {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`usage: noop-server PORT (got ${process.argv[2]})`);
  const responses: Record<string, Buffer> = {
    "/etcdserverpb.KV/Range": encoded("Range", { kvs: [], count: "0", more: false }),
    "/etcdserverpb.KV/Put": encoded("Put", {}),
    "/etcdserverpb.KV/DeleteRange": encoded("DeleteRange", { deleted: "0" }),
    "/etcdserverpb.KV/Txn": encoded("Txn", { succeeded: true, responses: [] }),
  };
  const server = http2.createServer();
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const body = responses[String(headers[":path"])];
    stream.on("error", () => undefined);
    stream.on("data", () => undefined);
    stream.on("end", () => {
      if (!body) {
        stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12", "grpc-message": "unimplemented" }, { endStream: true });
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(body);
    });
  });
  server.listen(port, "127.0.0.1", () => process.stderr.write(`serving client requests on 127.0.0.1:${port}\n`));
  const stop = () => process.exit(0); // nothing to flush
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
