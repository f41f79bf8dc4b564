import * as grpc from "@grpc/grpc-js";
import { ResponseBatch, TURN_FLUSH_BYTES } from "../../src/api/response-batch";
import { ServerCall } from "../../src/api/grpc-call";
import { GrpcServer, Handler } from "../../src/api/grpc-server";

/** A server-streaming method whose messages are raw bytes both ways. */
const bytes = (b: Buffer) => b;
const METHOD: grpc.MethodDefinition<Buffer, Buffer> = {
  path: "/test.Stream/Get",
  requestStream: false,
  responseStream: true,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
};

const RESPONSES = 2_000;
const EMPTY = Buffer.alloc(0);
const message = (i: number) => Buffer.from(`response ${i} `.repeat(1 + (i % 7)));

async function serve(handler: Handler): Promise<{ server: GrpcServer; port: number }> {
  const server = new GrpcServer({ receiveBytesMax: 1 << 20 });
  server.addService({ Get: METHOD }, { Get: handler });
  const port = await server.listen("127.0.0.1", 0);
  return { server, port };
}

function receiveAll(port: number): Promise<{ got: Buffer[]; status: grpc.StatusObject }> {
  const Client = grpc.makeGenericClientConstructor({ Get: METHOD } as grpc.ServiceDefinition, "Stream");
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & { Get: (req: Buffer) => grpc.ClientReadableStream<Buffer> };
  const got: Buffer[] = [];
  return new Promise((resolve, reject) => {
    const call = client.Get(Buffer.from("go"));
    call.on("data", (b: Buffer) => got.push(b));
    call.on("error", reject);
    call.on("status", (status) => {
      client.close();
      resolve({ got, status });
    });
  });
}

/** Receives the stream: exactly `expected`, in order, then OK. */
async function expectExactly(port: number, expected: Buffer[]): Promise<void> {
  const { got, status } = await receiveAll(port);
  expect(status.code).toBe(grpc.status.OK);
  expect(got.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(got[i].equals(expected[i])).toBe(true);
}

describe("ResponseBatch", () => {
  it("thousands of responses from one turn arrive whole, in order, before the status", async () => {
    let drained = 0;
    const { server, port } = await serve((call) => {
      const batch = new ResponseBatch(call, 4096, () => drained++);
      let accepted = 0;
      for (let i = 0; i < RESPONSES; i++) {
        const m = message(i);
        if (batch.send(m.subarray(0, 3), m.subarray(3))) accepted++;
      }
      expect(accepted).toBeLessThan(RESPONSES); // the 4 KiB budget was exceeded
      setImmediate(() => call.end());
    });
    try {
      const { got, status } = await receiveAll(port);
      expect(status.code).toBe(grpc.status.OK);
      expect(got.length).toBe(RESPONSES);
      for (let i = 0; i < RESPONSES; i++) expect(got[i].equals(message(i))).toBe(true);
      expect(drained).toBeGreaterThanOrEqual(1); // the writes completed and the budget freed
    } finally {
      server.forceShutdown();
    }
  });
  it("responses from many turns on concurrent streams arrive intact (reused buffers are not written while in flight)", async () => {
    const TURNS = 200;
    const PER_TURN = 25;
    const STREAMS = 4;
    let stream = 0;
    // Distinct per stream, turn and index, 40-1,000 bytes: a reused buffer overwritten too early would garble one.
    const body = (s: number, turn: number, i: number) => Buffer.from(`s${s} t${turn} i${i} `.repeat(3 + ((turn * 7 + i * 13 + s) % 60)));
    const { server, port } = await serve((call) => {
      const s = stream++;
      const batch = new ResponseBatch(call, 1 << 20, () => undefined);
      let turn = 0;
      const next = () => {
        for (let i = 0; i < PER_TURN; i++) batch.send(EMPTY, body(s, turn, i));
        if (++turn < TURNS) setImmediate(next);
        else setImmediate(() => { batch.flush(); call.end(); }); // another stream's turn may come first: write ours before ending
      };
      next();
    });
    try {
      const results = await Promise.all(Array.from({ length: STREAMS }, () => receiveAll(port)));
      const seen = new Set<string>();
      for (const { got, status } of results) {
        expect(status.code).toBe(grpc.status.OK);
        expect(got.length).toBe(TURNS * PER_TURN);
        const s = Number(/^s(\d+) /.exec(got[0].toString())![1]);
        seen.add(String(s));
        for (let turn = 0, n = 0; turn < TURNS; turn++) {
          for (let i = 0; i < PER_TURN; i++, n++) expect(got[n].equals(body(s, turn, i))).toBe(true);
        }
      }
      expect(seen.size).toBe(STREAMS);
    } finally {
      server.forceShutdown();
    }
  });
  it("responses sharing a body, with heads of mixed lengths, each arrive as their own head then the body", async () => {
    // Runs of one body broken by a head of another length or another body: frames copied in doubling runs must
    // still carry each response's own head (1..97 responses per run, not powers of two).
    const bodies = [Buffer.from("body one ".repeat(40)), Buffer.from("second body"), Buffer.alloc(0)];
    const expected: Buffer[] = [];
    const { server, port } = await serve((call) => {
      const batch = new ResponseBatch(call, 1 << 22, () => undefined);
      let n = 0;
      for (let run = 0; run < 60; run++) {
        const body = bodies[run % bodies.length];
        const count = 1 + ((run * 37) % 97);
        for (let i = 0; i < count; i++, n++) {
          const head = Buffer.from(`h${n}`.slice(0, 1 + ((n >> 4) % 4))); // lengths 1-4, in stretches of 16
          batch.send(head, body);
          expected.push(Buffer.concat([head, body]));
        }
      }
      setImmediate(() => call.end());
    });
    try {
      await expectExactly(port, expected);
    } finally {
      server.forceShutdown();
    }
  });
  it("sendRun (a cohort's heads, kept by the caller) mixes with send: every response in order, the caller's heads untouched", async () => {
    const body = Buffer.from("shared body ".repeat(20));
    const cohort = Array.from({ length: 37 }, (_, i) => Buffer.from([0x10, i])); // one length, as sendRun needs
    const kept = cohort.slice();
    const expected: Buffer[] = [];
    const { server, port } = await serve((call) => {
      const batch = new ResponseBatch(call, 1 << 22, () => undefined);
      for (let round = 0; round < 30; round++) {
        const alone = Buffer.from([0x20, round]);
        batch.send(alone, body); // before the run, same body and head length: must not join the caller's array
        expected.push(Buffer.concat([alone, body]));
        expect(batch.sendRun(cohort, body)).toBe(true);
        for (const h of cohort) expected.push(Buffer.concat([h, body]));
        batch.send(alone, body); // after it: a run of its own
        expected.push(Buffer.concat([alone, body]));
        expect(batch.sendRun([], body)).toBe(true); // nothing to send
      }
      setImmediate(() => call.end());
    });
    try {
      await expectExactly(port, expected);
      expect(cohort).toEqual(kept);
    } finally {
      server.forceShutdown();
    }
  });
  it("sendRun counts every response against the budget", async () => {
    let results: boolean[] = [];
    const { server, port } = await serve((call) => {
      const batch = new ResponseBatch(call, 10_000, () => undefined);
      const heads = Array.from({ length: 40 }, (_, i) => Buffer.from([0x10, i]));
      const body = Buffer.alloc(93, 0x61); // 5 + 2 + 93 = 100 bytes a response: 4,000 bytes a run
      results = [batch.sendRun(heads, body), batch.sendRun(heads, body), batch.sendRun(heads, body)];
      setImmediate(() => call.end());
    });
    try {
      const { got } = await receiveAll(port);
      expect(got.length).toBe(120);
      expect(results).toEqual([true, true, false]); // 12,000 bytes queued > 10,000
    } finally {
      server.forceShutdown();
    }
  });
});

/** A call that records each write with the event-loop turn it came in (a fake: these tests are about when, not how). */
function recordingCalls(n: number, writes: { stream: number; bytes: number; turn: number }[], turn: () => number): ServerCall[] {
  return Array.from({ length: n }, (_, stream) => ({
    writeFrames: (frames: Buffer, done: () => void) => {
      writes.push({ stream, bytes: frames.length, turn: turn() });
      done();
    },
  }) as unknown as ServerCall);
}

/** Counts event-loop turns (a setImmediate chain) until `until` holds; the count is read by `recordingCalls`. */
function countTurns(until: () => boolean): { turn: () => number; done: Promise<void> } {
  let turn = 0;
  const done = new Promise<void>((resolve) => {
    const tick = () => {
      turn++;
      if (until() || turn > 10_000) resolve();
      else setImmediate(tick);
    };
    setImmediate(tick);
  });
  return { turn: () => turn, done };
}

describe("ResponseBatch's turns", () => {
  it("a turn writes about TURN_FLUSH_BYTES: big streams go out one a turn, in the order queued, the first at once", async () => {
    const STREAMS = 6;
    const writes: { stream: number; bytes: number; turn: number }[] = [];
    const clock = countTurns(() => writes.length >= STREAMS);
    const batches = recordingCalls(STREAMS, writes, clock.turn).map((c) => new ResponseBatch(c, 1 << 30, () => undefined));
    const body = Buffer.alloc(TURN_FLUSH_BYTES / 2, 0x61);
    for (const b of [...batches].reverse()) for (let i = 0; i < 3; i++) b.send(EMPTY, body); // 48 KiB each, queued last to first
    await clock.done;
    expect(writes.map((w) => w.stream)).toEqual([5, 4, 3, 2, 1, 0]);
    expect(writes.map((w) => w.bytes)).toEqual(Array(STREAMS).fill(3 * (5 + body.length)));
    expect(writes[0].turn).toBe(0); // on the next tick, before any immediate
    expect(writes.map((w) => w.turn)).toEqual([0, 1, 2, 3, 4, 5]); // an immediate (the poll phase) between each
  });
  it("small streams share a turn: 200 streams of 100 bytes go out in one", async () => {
    const STREAMS = 200;
    const writes: { stream: number; bytes: number; turn: number }[] = [];
    const clock = countTurns(() => writes.length >= STREAMS);
    const batches = recordingCalls(STREAMS, writes, clock.turn).map((c) => new ResponseBatch(c, 1 << 30, () => undefined));
    for (const b of batches) b.send(EMPTY, Buffer.alloc(95));
    await clock.done;
    expect(writes.length).toBe(STREAMS);
    expect(new Set(writes.map((w) => w.turn))).toEqual(new Set([0]));
  });
  it("a batch flushed before its turn (the call is ending) writes once; what it gets later goes out on a later turn", async () => {
    const writes: { stream: number; bytes: number; turn: number }[] = [];
    const clock = countTurns(() => writes.length >= 3);
    const [big, early] = recordingCalls(2, writes, clock.turn).map((c) => new ResponseBatch(c, 1 << 30, () => undefined));
    big.send(EMPTY, Buffer.alloc(TURN_FLUSH_BYTES));
    early.send(EMPTY, Buffer.alloc(10));
    await new Promise<void>((r) => process.nextTick(r)); // big went out; early waits for the next turn
    expect(writes.map((w) => w.stream)).toEqual([0]);
    expect(early.flush()).toBe(15);
    early.send(EMPTY, Buffer.alloc(20));
    await clock.done;
    expect(writes.map((w) => [w.stream, w.bytes])).toEqual([[0, 5 + TURN_FLUSH_BYTES], [1, 15], [1, 25]]);
    expect(writes[2].turn).toBeGreaterThan(0);
  });
});
