/**
 * The issue-3 targets' floor: a server that does only the steps mergekv's
 * design makes every write take, and nothing else, so that the `floor`
 * phase can tell what the watch and lease targets ask of this machine from
 * what mergekv's own code costs. It serves etcd's KV Put, Watch (creates on
 * a key range, events with their kv), LeaseGrant and LeaseRevoke on
 * node:http2, as mergekv does, and a write goes through the stages up to
 * the one named, each adding a step:
 *
 *   answer     answered at once (the HTTP/2 round trip and the fan-out alone)
 *   worker     + a round trip to a worker thread (the frontend's hop); one
 *                worker per vCPU, as mergekv has frontends, a key's writes
 *                on the worker its hash names (a revoke: its first key's)
 *   automerge  + the worker writes the value (a revoke: deletes the lease's
 *                keys) in an Automerge document under its actor and ships
 *                the change (the frontend's write)
 *   durable    + the change written to Level with sync before the answer
 *                (persistence: the whole mandated path), group committed
 *                (writes that come while a synced batch is in flight go in
 *                the next, as mergekv's backend does); a grant is a synced
 *                Level write of its record at this stage, and no
 *                frontend's business at any (as in mergekv)
 *
 * After the answer, the put's event goes to every watch through mergekv's
 * own `ResponseBatch` (one WatchResponse per watch, as etcd and mergekv
 * send; each stream's responses in one write, at most TURN_FLUSH_BYTES a
 * turn), to the watches whose range holds the key, found once per key (as
 * mergekv's watch hub finds a key's cohort): the fan-out is mergekv's, the
 * rest is the least a write must do. No revision bookkeeping, MVCC,
 * validation or flow control (a stream's queue is not bounded: the
 * benchmark's watchers keep up): a floor, not a server. A request that
 * fails is answered INTERNAL with its message. Run as its own process:
 *   node dist/bench/floor-server.js PORT STAGE DATA_DIR
 */
import * as http2 from "node:http2";
import * as os from "node:os";
import * as path from "node:path";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { ClassicLevel } from "classic-level";
import { frame, messageSplitter } from "./h2";
import { ProtoReader } from "./proto-reader";
import { ResponseBatch } from "../src/api/response-batch";
import type { ServerCall } from "../src/api/grpc-call";

export const FLOOR_STAGES = ["answer", "worker", "automerge", "durable"] as const;
export type FloorStage = (typeof FLOOR_STAGES)[number];

// --- protobuf, by hand: the few messages served ---

class Writer {
  private readonly bytes: number[] = [];
  varint(field: number, n: number): this {
    if (n === 0) return this; // proto3 leaves zero out
    this.tag(field, 0).raw(n);
    return this;
  }
  bytesField(field: number, b: Uint8Array): this {
    this.tag(field, 2).raw(b.length);
    for (const x of b) this.bytes.push(x);
    return this;
  }
  done(): Buffer {
    return Buffer.from(this.bytes);
  }
  private tag(field: number, wire: number): this {
    return this.raw(field * 8 + wire);
  }
  private raw(n: number): this {
    while (n >= 0x80) {
      this.bytes.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.bytes.push(n);
    return this;
  }
}

interface Fields {
  bytes: Map<number, Buffer>;
  ints: Map<number, number>;
}

/** The fields of one message, by number (the last of each); varints as numbers (below 2^53). */
function fields(b: Buffer): Fields {
  const out: Fields = { bytes: new Map(), ints: new Map() };
  const r = new ProtoReader().at(b);
  while (r.pos < b.length) {
    const tag = r.varint();
    const wire = tag & 7;
    if (wire === 2) {
      const len = r.varint();
      out.bytes.set(tag >>> 3, b.subarray(r.pos, r.pos + len));
      r.pos += len;
    } else if (wire === 0) out.ints.set(tag >>> 3, r.varint());
    else r.skip(wire);
  }
  return out;
}

const header = (revision: number) => new Writer().varint(1, 1).varint(2, 1).varint(3, revision).varint(4, 1).done();

/** A write for the worker: values put, null deleted; `write` false: the hop alone. */
interface WorkerRequest {
  id: number;
  ops: { key: Uint8Array; value: Uint8Array | null }[];
  write: boolean;
}

// --- the worker: the frontend's hop and, from `automerge` on, its write ---

function workerMain(): void {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { A } = require("../src/backend/automerge") as typeof import("../src/backend/automerge");
  const ROOT = "_root";
  const actor = ((workerData as { actor: number }).actor + 1).toString(16).padStart(32, "0");
  const doc = A.getBackend(A.init()).clone(actor);
  const port = parentPort!;
  port.on("message", (m: WorkerRequest) => {
    if (!m.write || m.ops.length === 0) return port.postMessage({ id: m.id, change: null });
    for (const op of m.ops) {
      const key = Buffer.from(op.key).toString("latin1");
      if (op.value) doc.put(ROOT, key, op.value);
      else doc.delete(ROOT, key);
    }
    doc.commit();
    port.postMessage({ id: m.id, change: doc.getLastLocalChange() });
  });
}

// --- the server ---

interface Watch {
  id: number;
  key: Buffer;
  rangeEnd: Buffer;
  /** Its watch_id field, encoded. */
  head: Buffer;
}

interface WatchStream {
  batch: ResponseBatch;
  watches: Watch[];
  nextId: number;
  /** Per key, the heads of the watches it is in, in runs of one length (ResponseBatch.sendRun); dropped when the watches change. */
  runs: Map<string, Buffer[][]>;
}

/** What ResponseBatch needs of a call: its frames written to the stream. */
function callOf(stream: http2.ServerHttp2Stream): ServerCall {
  return { writeFrames: (frames: Buffer, done: () => void) => (stream.destroyed ? done() : stream.write(frames, done)) } as unknown as ServerCall;
}

function inRange(w: Watch, key: Buffer): boolean {
  if (w.rangeEnd.length === 0) return key.equals(w.key);
  const toEnd = w.rangeEnd.length === 1 && w.rangeEnd[0] === 0; // range_end "\0": every key from `key` on
  return Buffer.compare(key, w.key) >= 0 && (toEnd || Buffer.compare(key, w.rangeEnd) < 0);
}

/** Keys whose watch runs a stream keeps at most (the benchmark's writer uses 64). */
const RUNS_KEPT_MAX = 4_096;

/** The stream's watches on `key`, their heads in runs of one length (the ids of a stream's first 128 watches are one byte). */
function runsOf(ws: WatchStream, key: Buffer, k: string): Buffer[][] {
  let runs = ws.runs.get(k);
  if (!runs) {
    const byLength = new Map<number, Buffer[]>();
    for (const w of ws.watches) {
      if (!inRange(w, key)) continue;
      let run = byLength.get(w.head.length);
      if (!run) byLength.set(w.head.length, (run = []));
      run.push(w.head);
    }
    runs = [...byLength.values()];
    if (ws.runs.size >= RUNS_KEPT_MAX) ws.runs.clear();
    ws.runs.set(k, runs);
  }
  return runs;
}

async function main(): Promise<void> {
  const [portArg, stageArg, dataDir] = process.argv.slice(2);
  const port = Number(portArg);
  const stage = stageArg as FloorStage;
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || !FLOOR_STAGES.includes(stage) || !dataDir) {
    throw new Error(`usage: floor-server PORT ${FLOOR_STAGES.join("|")} DATA_DIR (got ${process.argv.slice(2).join(" ")})`);
  }
  const level = FLOOR_STAGES.indexOf(stage);
  const db = level >= 3 ? new ClassicLevel<Buffer, Uint8Array>(path.join(dataDir, "floor"), { keyEncoding: "buffer", valueEncoding: "view" }) : null;
  await db?.open();
  const workers = level >= 1 ? Array.from({ length: Math.max(1, os.availableParallelism()) }, (_, actor) => new Worker(__filename, { workerData: { floorWorker: true, actor } })) : [];
  const waiting = new Map<number, (change: Uint8Array | null) => void>();
  for (const w of workers) {
    w.on("message", (m: { id: number; change: Uint8Array | null }) => {
      const done = waiting.get(m.id)!;
      waiting.delete(m.id);
      done(m.change);
    });
  }
  const viaWorker = (id: number, ops: WorkerRequest["ops"]) => new Promise<Uint8Array | null>((resolve) => {
    waiting.set(id, resolve);
    const key = ops.length > 0 ? ops[0].key : Buffer.alloc(0);
    let hash = 0;
    for (const b of key) hash = (hash * 31 + b) >>> 0;
    workers[hash % workers.length].postMessage({ id, ops, write: level >= 2 } satisfies WorkerRequest);
  });

  type StoredRecord = { key: Buffer; value: Uint8Array | null };
  /** Group commit: records that come while a synced batch is in flight go in the next. */
  let queued: { records: StoredRecord[]; done: (e?: Error) => void }[] = [];
  let committing = false;
  const commit = () => {
    const batch = queued;
    queued = [];
    committing = true;
    const ops = batch.flatMap((q) => q.records.map((o) => (o.value ? { type: "put" as const, key: o.key, value: o.value } : { type: "del" as const, key: o.key })));
    db!.batch(ops, { sync: true }).then(() => batch.forEach((q) => q.done()), (e: Error) => batch.forEach((q) => q.done(e))).finally(() => {
      committing = false;
      if (queued.length > 0) commit();
    });
  };
  const durable = (records: StoredRecord[]) => new Promise<void>((resolve, reject) => {
    if (!db) return resolve();
    queued.push({ records, done: (e) => (e ? reject(e) : resolve()) });
    if (!committing) commit();
  });
  /** A write through the stages: the worker's change stored under its revision. */
  const write = async (rev: number, ops: WorkerRequest["ops"], more: StoredRecord[] = []) => {
    const change = workers.length > 0 ? await viaWorker(rev, ops) : null;
    const records = [...more];
    if (change) {
      const k = Buffer.alloc(9);
      k[0] = 0x63; // "c": a change record
      k.writeUInt32BE(Math.floor(rev / 2 ** 32), 1);
      k.writeUInt32BE(rev >>> 0, 5);
      records.push({ key: k, value: change });
    }
    if (records.length > 0) await durable(records);
  };
  const leaseRecord = (id: number) => Buffer.from(`L|${id}`);
  const leases = new Map<number, Set<string>>();

  let revision = 1;
  const versions = new Map<string, { created: number; version: number }>();
  const watchStreams = new Set<WatchStream>();

  const fanOut = (key: Buffer, value: Buffer, rev: number) => {
    const k = key.toString("latin1");
    let v = versions.get(k);
    if (!v) versions.set(k, (v = { created: rev, version: 0 }));
    v.version++;
    const kv = new Writer().bytesField(1, key).varint(2, v.created).varint(3, rev).varint(4, v.version).bytesField(5, value).done();
    const event = new Writer().bytesField(2, kv).done();
    const body = Buffer.concat([new Writer().bytesField(1, header(rev)).done(), new Writer().bytesField(11, event).done()]);
    for (const ws of watchStreams) for (const run of runsOf(ws, key, k)) ws.batch.sendRun(run, body);
  };

  const put = async (body: Buffer): Promise<Buffer> => {
    const f = fields(body);
    const key = f.bytes.get(1) ?? Buffer.alloc(0);
    const value = f.bytes.get(2) ?? Buffer.alloc(0);
    const lease = f.ints.get(3) ?? 0;
    const rev = ++revision;
    if (lease !== 0) leases.get(lease)?.add(key.toString("latin1"));
    await write(rev, [{ key, value }]);
    process.nextTick(fanOut, key, value, rev);
    return frame(new Writer().bytesField(1, header(rev)).done());
  };

  const grant = async (body: Buffer): Promise<Buffer> => {
    const f = fields(body);
    const ttl = Math.max(2, f.ints.get(1) ?? 0);
    const id = f.ints.get(2) || 1 + Math.floor(Math.random() * 2 ** 47);
    await durable([{ key: leaseRecord(id), value: Buffer.from(String(ttl)) }]);
    leases.set(id, new Set());
    return frame(new Writer().bytesField(1, header(revision)).varint(2, id).varint(3, ttl).done());
  };

  const revoke = async (body: Buffer): Promise<Buffer> => {
    const id = fields(body).ints.get(1) ?? 0;
    const keys = leases.get(id) ?? new Set<string>();
    leases.delete(id);
    const rev = ++revision;
    await write(rev, [...keys].map((k) => ({ key: Buffer.from(k, "latin1"), value: null })), [{ key: leaseRecord(id), value: null }]);
    return frame(new Writer().bytesField(1, header(rev)).done());
  };

  const unary: Record<string, (body: Buffer) => Promise<Buffer>> = {
    "/etcdserverpb.KV/Put": put,
    "/etcdserverpb.Lease/LeaseGrant": grant,
    "/etcdserverpb.Lease/LeaseRevoke": revoke,
  };

  const server = http2.createServer();
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    stream.on("error", () => undefined);
    const route = String(headers[":path"]);
    const call = unary[route];
    if (call) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        call(Buffer.concat(chunks).subarray(5)).then((body) => {
          if (stream.destroyed) return;
          stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
          stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
          stream.end(body);
        }, (e: Error) => {
          if (!stream.destroyed) stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "13", "grpc-message": encodeURIComponent(`floor-server: ${e.message}`) }, { endStream: true });
        });
      });
    } else if (route === "/etcdserverpb.Watch/Watch") {
      const ws: WatchStream = { batch: new ResponseBatch(callOf(stream), Infinity, () => undefined), watches: [], nextId: 0, runs: new Map() };
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      watchStreams.add(ws);
      stream.on("close", () => watchStreams.delete(ws));
      stream.on("data", messageSplitter((buf, start, end) => {
        const request = fields(buf.subarray(start, end)).bytes;
        const cancel = request.get(2);
        if (cancel) {
          const id = fields(cancel).ints.get(1) ?? 0;
          ws.watches = ws.watches.filter((w) => w.id !== id);
          ws.runs.clear();
          stream.write(frame(new Writer().bytesField(1, header(revision)).varint(2, id).varint(4, 1).done()));
          return;
        }
        const create = request.get(1);
        if (!create) return; // progress requests: not part of the floor
        const f = fields(create).bytes;
        const id = ws.nextId++;
        const w: Watch = { id, key: f.get(1) ?? Buffer.alloc(0), rangeEnd: f.get(2) ?? Buffer.alloc(0), head: new Writer().varint(2, id).done() };
        ws.watches.push(w);
        ws.runs.clear();
        stream.write(frame(new Writer().bytesField(1, header(revision)).varint(2, w.id).varint(3, 1).done()));
      }));
    } else {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12", "grpc-message": "unimplemented" }, { endStream: true });
    }
  });
  server.listen(port, "127.0.0.1", () => process.stderr.write(`serving client requests on 127.0.0.1:${port} (floor: ${stage})\n`));
  const stop = () => {
    for (const w of workers) void w.terminate();
    void (db?.close() ?? Promise.resolve()).finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (isMainThread && require.main === module) {
  main().catch((e) => {
    process.stderr.write(`floor-server: ${(e as Error).message}\n`);
    process.exit(1);
  });
} else if (!isMainThread && (workerData as { floorWorker?: boolean } | null)?.floorWorker) {
  workerMain();
}
