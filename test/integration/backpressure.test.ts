/**
 * Streams whose every request is answered (LeaseKeepAlive; a Watch stream's
 * progress requests): a client that keeps sending and never reads must be
 * held back by HTTP/2's flow control, not make the server buffer answers
 * without bound, and once it reads it gets every answer. A raw HTTP/2 client
 * sends 20,000 requests (50 bytes each, padded with a field the server
 * skips) while paused: their answers (about 800 KB) are far more than
 * HTTP/2's windows hold, so a server that keeps reading would have taken all
 * of them within the wait, and one that stops leaves most in the client's buffer.
 */
import * as http2 from "node:http2";
import { startServer, RunningServer } from "../helpers/server";
import { framed, rawClient, services } from "../helpers/grpc";

const WAIT_MS = 1_000;
const COUNT = 20_000;
const REQUEST_BYTES = 50;

/** `message` with an unknown length-delimited field 15 appended, to REQUEST_BYTES in all: protobuf decoders skip it. */
function padded(message: Buffer): Buffer {
  const fill = REQUEST_BYTES - message.length - 2;
  return Buffer.concat([message, Buffer.from([(15 << 3) | 2, fill]), Buffer.alloc(fill, 0x70)]);
}

/** Sends `count` copies of `request` on a new stream of `path` without reading; then reads. */
async function flood(endpoint: string, path: string, request: Buffer, count: number): Promise<{ unsent: number; sent: number; answers: number }> {
  const session = http2.connect(`http://${endpoint}`);
  try {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
    stream.pause();
    const frame = framed(request);
    for (let i = 0; i < count; i++) stream.write(frame);
    await new Promise((r) => setTimeout(r, WAIT_MS));
    const unsent = stream.writableLength;
    let answers = 0;
    let pending = Buffer.alloc(0);
    stream.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        answers++;
        pending = pending.subarray(5 + pending.readUInt32BE(1));
      }
    });
    stream.resume();
    const deadline = Date.now() + 20_000;
    while (answers < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    stream.close();
    return { unsent, sent: count * frame.length, answers };
  } finally {
    session.close();
  }
}

describe("a client that sends without reading (mergekv)", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  test("LeaseKeepAlive: the server stops reading until its answers drain, then answers every request", async () => {
    const c = rawClient(server.endpoint);
    const id = (await c.call("Lease", "LeaseGrant", { TTL: "60" })).ID;
    c.close();
    const request = padded((services().Lease.service as unknown as Record<string, { requestSerialize(m: object): Buffer }>).LeaseKeepAlive.requestSerialize({ ID: id }));
    const r = await flood(server.endpoint, "/etcdserverpb.Lease/LeaseKeepAlive", request, COUNT);
    expect(r.unsent).toBeGreaterThan(r.sent / 2);
    expect(r.answers).toBe(COUNT);
  });

  test("Watch progress requests: the same", async () => {
    const request = padded((services().Watch.service as unknown as Record<string, { requestSerialize(m: object): Buffer }>).Watch.requestSerialize({ progress_request: {} }));
    const r = await flood(server.endpoint, "/etcdserverpb.Watch/Watch", request, COUNT);
    expect(r.unsent).toBeGreaterThan(r.sent / 2);
    expect(r.answers).toBe(COUNT);
  });
});
