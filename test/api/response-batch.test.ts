import * as grpc from "@grpc/grpc-js";
import { ResponseBatch } from "../../src/api/response-batch";
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
        else setImmediate(() => call.end());
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
