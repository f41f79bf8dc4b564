/**
 * The gRPC transport against grpc-js's client (what the etcd3 package uses)
 * and raw HTTP/2 requests (for what a client library hides: deadlines the
 * server enforces, content types, malformed streams).
 */
import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";
import { GrpcServer } from "../../src/api/grpc-server";
import { MethodDefinition, ServerCall, percentEncoded } from "../../src/api/grpc-call";
import { framed } from "../helpers/grpc";

const bytes = (b: Buffer) => b;
/** As a protobuf type's encoder: anything but bytes is refused. */
const onlyBytes = (b: Buffer) => {
  if (!Buffer.isBuffer(b)) throw new TypeError("not bytes");
  return b;
};
const method = (name: string, requestStream: boolean, responseStream: boolean): MethodDefinition & grpc.MethodDefinition<Buffer, Buffer> => ({
  path: `/test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: onlyBytes,
  responseDeserialize: bytes,
});
const SERVICE = { Unary: method("Unary", false, false), Chat: method("Chat", true, true), Missing: method("Missing", false, false) };
const RECEIVE_BYTES_MAX = 64 * 1024;
const SLOW_MS = 300;

interface Echo {
  server: GrpcServer;
  port: number;
  /** Every call's "close", in order: the path of the call that closed. */
  closed: string[];
}

/**
 * Unary: answers the request's bytes; "fail:CODE:TEXT" fails with that
 * status; "token" answers the token metadata; "slow" answers after SLOW_MS.
 * Chat: echoes each message, ends when the client does.
 */
async function serve(): Promise<Echo> {
  const server = new GrpcServer({ receiveBytesMax: RECEIVE_BYTES_MAX });
  const closed: string[] = [];
  const track = (call: ServerCall) => call.on("close", () => closed.push(call.path));
  server.addService(SERVICE, {
    Unary: (call) => {
      track(call);
      const text = (call.request as Buffer).toString();
      const m = /^fail:(\d+):(.*)$/s.exec(text);
      if (m) call.fail({ code: Number(m[1]), message: m[2] });
      else if (text === "token") call.reply(Buffer.from(call.metadata("token") ?? "none"));
      else if (text === "slow") setTimeout(() => call.reply(Buffer.from("late")), SLOW_MS);
      else if (text === "unencodable") call.reply({ not: "bytes" });
      else call.reply(call.request as Buffer);
    },
    Chat: (call) => {
      track(call);
      call.on("data", (m: Buffer) => {
        if (!call.write(m)) call.holdRequestsUntilDrained();
      });
      call.on("end", () => call.end());
    },
  });
  const port = await server.listen("127.0.0.1", 0);
  return { server, port, closed };
}

type EchoClient = grpc.Client & {
  Unary(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void;
  Missing(req: Buffer, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void;
  Chat(): grpc.ClientDuplexStream<Buffer, Buffer>;
};

function client(port: number, options: grpc.ClientOptions = {}): EchoClient {
  const Client = grpc.makeGenericClientConstructor(SERVICE, "Echo");
  return new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options) as unknown as EchoClient;
}

function unary(c: EchoClient, req: Buffer | string, md = new grpc.Metadata()): Promise<Buffer> {
  return new Promise((resolve, reject) => c.Unary(Buffer.from(req), md, { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r!))));
}

async function statusOf(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as grpc.ServiceError;
    return { code: err.code, details: err.details };
  }
  throw new Error("the call succeeded");
}

/** One raw HTTP/2 request: the response headers, the body bytes and the trailers. */
async function rawCall(port: number, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ":method": "POST", "content-type": "application/grpc", te: "trailers", ...headers });
      let got: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on("response", (h) => (got = h));
      req.on("trailers", (t) => (trailers = t));
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve({ headers: got, body: Buffer.concat(chunks), trailers }));
      req.on("error", reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}

describe("GrpcServer", () => {
  let echo: Echo;
  let c: EchoClient;
  beforeAll(async () => {
    echo = await serve();
    c = client(echo.port);
  });
  afterAll(() => {
    c.close();
    echo.server.forceShutdown();
  });

  test("a unary call answers its message, and the call closes once", async () => {
    const req = Buffer.from("hello \u00e9\u0000 bytes");
    const before = echo.closed.length;
    expect((await unary(c, req)).equals(req)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(echo.closed.slice(before)).toEqual(["/test.Echo/Unary"]);
  });

  test("request metadata reaches the handler", async () => {
    const md = new grpc.Metadata();
    md.set("token", "abc.123");
    expect((await unary(c, "token", md)).toString()).toBe("abc.123");
    expect((await unary(c, "token")).toString()).toBe("none");
  });

  test("an error status arrives with its code and exact text, percent-encoding and all", async () => {
    const text = "etcdserver: 100% sure, caf\u00e9 \u2603";
    expect(percentEncoded(text)).toBe("etcdserver: 100%25 sure, caf%C3%A9 %E2%98%83");
    expect(await statusOf(unary(c, `fail:9:${text}`))).toEqual({ code: 9, details: text });
    expect(await statusOf(unary(c, "fail:7:etcdserver: permission denied"))).toEqual({ code: 7, details: "etcdserver: permission denied" });
  });

  test("a response its method cannot encode ends the call with INTERNAL, and the server keeps serving", async () => {
    const s = await statusOf(unary(c, "unencodable"));
    expect(s.code).toBe(grpc.status.INTERNAL);
    expect(s.details).toMatch(/^mergekv: internal error: cannot encode the response: /);
    expect((await unary(c, "next")).toString()).toBe("next");
  });

  test("an unknown method or service is UNIMPLEMENTED, with Go gRPC's text", async () => {
    const missing = await statusOf(new Promise((resolve, reject) => c.Missing(Buffer.from("x"), (e, r) => (e ? reject(e) : resolve(r)))));
    expect(missing).toEqual({ code: grpc.status.UNIMPLEMENTED, details: "unknown method Missing for service test.Echo" });
    const other = await rawCall(echo.port, { ":path": "/nope.Svc/Get" }, framed(Buffer.from("x")));
    expect(other.headers["grpc-status"]).toBe(String(grpc.status.UNIMPLEMENTED));
    expect(other.headers["grpc-message"]).toBe("unknown service nope.Svc");
  });

  test("a message over the receive limit is refused from its prefix, and the server keeps serving", async () => {
    const big = Buffer.alloc(RECEIVE_BYTES_MAX + 1, 7);
    expect(await statusOf(unary(c, big))).toEqual({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: `grpc: received message larger than max (${RECEIVE_BYTES_MAX + 1} vs. ${RECEIVE_BYTES_MAX})`,
    });
    expect((await unary(c, "still here")).toString()).toBe("still here");
  });

  test.each([
    ["gzip", 2],
    ["deflate", 1],
  ])("a %s-compressed request is decompressed", async (_name, algorithm) => {
    const zipped = client(echo.port, { "grpc.default_compression_algorithm": algorithm });
    try {
      const req = Buffer.from("compress me ".repeat(500));
      expect((await unary(zipped, req)).equals(req)).toBe(true);
    } finally {
      zipped.close();
    }
  });

  test("a deadline (grpc-timeout) ends the call with DEADLINE_EXCEEDED, and the late answer is dropped", async () => {
    const started = Date.now();
    const r = await rawCall(echo.port, { ":path": "/test.Echo/Unary", "grpc-timeout": "100m" }, framed(Buffer.from("slow")));
    expect(r.headers["grpc-status"]).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    expect(r.body.length).toBe(0);
    expect(Date.now() - started).toBeLessThan(SLOW_MS);
    await new Promise((res) => setTimeout(res, SLOW_MS)); // the handler answers now: nothing breaks
    expect((await unary(c, "after")).toString()).toBe("after");
  });

  test("a request without a message is INTERNAL; a non-gRPC content type is HTTP 415", async () => {
    const empty = await rawCall(echo.port, { ":path": "/test.Echo/Unary" }, Buffer.alloc(0));
    expect(empty.headers["grpc-status"]).toBe(String(grpc.status.INTERNAL));
    const cut = await rawCall(echo.port, { ":path": "/test.Echo/Chat" }, framed(Buffer.from("whole")).subarray(0, 7));
    expect(cut.trailers["grpc-status"] ?? cut.headers["grpc-status"]).toBe(String(grpc.status.INTERNAL));
    const text = await rawCall(echo.port, { ":path": "/test.Echo/Unary", "content-type": "text/plain" }, Buffer.from("x"));
    expect(text.headers[":status"]).toBe(415);
  });

  test("a bidi stream echoes many messages in order, split and joined across DATA frames", async () => {
    const call = c.Chat();
    const got: string[] = [];
    const done = new Promise<grpc.StatusObject>((resolve, reject) => {
      call.on("data", (m: Buffer) => got.push(m.toString()));
      call.on("status", resolve);
      call.on("error", reject);
    });
    const sent = Array.from({ length: 300 }, (_, i) => `message ${i} `.repeat(1 + (i % 50)));
    for (const m of sent) call.write(Buffer.from(m));
    call.end();
    expect((await done).code).toBe(grpc.status.OK);
    expect(got).toEqual(sent);
  });

  test("a client that sends without reading is held back (the server stops reading until its answers drain), and loses nothing", async () => {
    const session = http2.connect(`http://127.0.0.1:${echo.port}`);
    try {
      const req = session.request({ ":method": "POST", ":path": "/test.Echo/Chat", "content-type": "application/grpc", te: "trailers" });
      req.pause(); // the echoes are not read
      const message = framed(Buffer.alloc(1000, 0x61));
      const N = 4_000; // 4 MB of requests: far beyond HTTP/2's windows and the streams' buffers
      for (let i = 0; i < N; i++) req.write(message);
      req.end();
      await new Promise((r) => setTimeout(r, 500));
      expect(req.writableLength).toBeGreaterThan(N * message.length / 2); // most still waits on the client: the server stopped taking it
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      const ended = new Promise((resolve) => req.on("end", resolve));
      req.resume();
      await ended;
      expect(Buffer.concat(chunks).equals(Buffer.concat(Array.from({ length: N }, () => message)))).toBe(true);
    } finally {
      session.close();
    }
  });

  test("a client cancelling a stream closes the server's call", async () => {
    const before = echo.closed.length;
    const call = c.Chat();
    call.on("error", () => undefined);
    const first = new Promise((r) => call.once("data", r));
    call.write(Buffer.from("ping"));
    await first;
    call.cancel();
    const deadline = Date.now() + 5_000;
    while (echo.closed.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(echo.closed.slice(before)).toEqual(["/test.Echo/Chat"]);
  });
});

describe("GrpcServer shutdown", () => {
  test("shutdown lets a call in flight finish, then refuses new connections", async () => {
    const echo = await serve();
    const c = client(echo.port);
    try {
      await unary(c, "warm"); // the connection is up
      const slow = unary(c, "slow");
      await new Promise((r) => setTimeout(r, 50)); // the call has reached the server
      await echo.server.shutdown();
      expect((await slow).toString()).toBe("late");
      const fresh = client(echo.port);
      try {
        const s = await statusOf(new Promise((resolve, reject) =>
          fresh.Unary(Buffer.from("x"), new grpc.Metadata(), { deadline: Date.now() + 1_000 }, (e, r) => (e ? reject(e) : resolve(r)))));
        expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(s.code);
      } finally {
        fresh.close();
      }
    } finally {
      c.close();
      echo.server.forceShutdown();
    }
  });
});
