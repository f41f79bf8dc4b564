/**
 * One thread of the watch fan-out phase: opens its Watch streams (one HTTP/2
 * connection each), creates its watches on the prefix, says "ready", then
 * counts every event delivered and its latency. Responses are walked by a
 * hand-written protobuf reader that only looks at what is measured (created
 * and canceled flags, each event's value), so decoding 1,000 deliveries per
 * put does not make the client the bottleneck.
 *
 * An event's value starts with the put's sequence number (u32 LE) and the
 * writer's send time (f64 LE); the writer stores each put's acknowledgement
 * time in a shared array indexed by that number.
 */
import * as http2 from "node:http2";
import { parentPort, workerData } from "node:worker_threads";
import { codec, histIndex, HIST_BUCKETS, now } from "./issue3-common";
import { frame, messageSplitter } from "./h2";
import { ProtoReader } from "./proto-reader";

export interface WatchThreadSpec {
  endpoint: string;
  streams: number;
  watchesPerStream: number;
  prefix: string;
  rangeEnd: string;
  /** Float64Array over it: ack time (ms) of put `seq`, 0 until acknowledged. */
  acks: SharedArrayBuffer;
  /** Float64Array over it: events this thread has received so far, at [thread]. */
  progress: SharedArrayBuffer;
  thread: number;
}

export interface WatchThreadResult {
  /** Events received inside the measured window (the throughput figure). */
  windowEvents: number;
  /** Events of puts sent inside the window that got a latency (by the end of the drain). */
  measuredEvents: number;
  /** Of those, events that arrived before the writer saw its put acknowledged (latency counted as 0). */
  early: number;
  totalEvents: number;
  /** Histograms (see issue3-common): ack -> received, and send -> received. */
  ackHist: Float64Array;
  sendHist: Float64Array;
  canceled: number;
  streamErrors: string[];
}

export type WatchToMain = { type: "ready" } | { type: "done"; result: WatchThreadResult } | { type: "failed"; message: string };
export type WatchFromMain = { type: "go"; recordFrom: number; deadline: number } | { type: "stop" };

const spec = workerData as WatchThreadSpec;
const port = parentPort!;
const post = (m: WatchToMain) => port.postMessage(m);
const acks = new Float64Array(spec.acks);
const progress = new Float64Array(spec.progress);

const ackHist = new Float64Array(HIST_BUCKETS);
const sendHist = new Float64Array(HIST_BUCKETS);
let recordFrom = Infinity;
let deadline = -Infinity;
let windowEvents = 0;
let measuredEvents = 0;
let early = 0;
let totalEvents = 0;
let created = 0;
let canceled = 0;
const streamErrors: string[] = [];
/** (seq, received) of events whose ack the writer had not yet stored; settled at the end. */
let pendingSeq: number[] = [];
let pendingAt: number[] = [];

const r = new ProtoReader();

/** mvccpb.KeyValue: field 5 is the value. */
function onKv(b: Buffer, end: number, received: number): void {
  while (r.pos < end) {
    const tag = r.varint();
    if (tag >>> 3 === 5 && (tag & 7) === 2) {
      const len = r.varint();
      if (len >= 12) onValue(b.readUInt32LE(r.pos), b.readDoubleLE(r.pos + 4), received);
      r.pos += len;
    } else r.skip(tag & 7);
  }
}

function onValue(seq: number, sent: number, received: number): void {
  totalEvents++;
  if (received >= recordFrom && received < deadline) windowEvents++;
  if (sent < recordFrom || sent >= deadline) return;
  measuredEvents++;
  sendHist[histIndex(received - sent)]++;
  const ack = acks[seq];
  if (ack > 0) {
    if (received < ack) early++;
    ackHist[histIndex(received - ack)]++;
  } else {
    pendingSeq.push(seq);
    pendingAt.push(received);
  }
}

/** mvccpb.Event: field 2 is the kv. */
function onEvent(b: Buffer, end: number, received: number): void {
  while (r.pos < end) {
    const tag = r.varint();
    if (tag >>> 3 === 2 && (tag & 7) === 2) {
      const len = r.varint();
      const kvEnd = r.pos + len;
      onKv(b, kvEnd, received);
      r.pos = kvEnd;
    } else r.skip(tag & 7);
  }
}

/** etcdserverpb.WatchResponse: 3 created, 4 canceled, 6 cancel_reason, 11 events. */
function onResponse(b: Buffer, start: number, end: number): void {
  const received = now();
  r.at(b, start);
  while (r.pos < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    if (field === 3 && (tag & 7) === 0) {
      if (r.varint()) created++;
    } else if (field === 4 && (tag & 7) === 0) {
      if (r.varint()) canceled++;
    } else if (field === 6 && (tag & 7) === 2) {
      const len = r.varint();
      if (streamErrors.length < 5) streamErrors.push(`canceled: ${b.toString("utf8", r.pos, r.pos + len)}`);
      r.pos += len;
    } else if (field === 11 && (tag & 7) === 2) {
      const len = r.varint();
      const evEnd = r.pos + len;
      onEvent(b, evEnd, received);
      r.pos = evEnd;
    } else r.skip(tag & 7);
  }
  progress[spec.thread] = totalEvents;
}

const sessions: http2.ClientHttp2Session[] = [];
const total = spec.streams * spec.watchesPerStream;
let readySent = false;

function openStream(): void {
  const session = http2.connect(`http://${spec.endpoint}`, { settings: { initialWindowSize: 4 << 20 } });
  session.on("error", (e) => { if (streamErrors.length < 5) streamErrors.push(`session: ${e.message}`); });
  session.on("connect", () => session.setLocalWindowSize(16 << 20));
  sessions.push(session);
  const stream = session.request({ ":method": "POST", ":path": "/etcdserverpb.Watch/Watch", "content-type": "application/grpc", te: "trailers" });
  const split = messageSplitter(onResponse);
  stream.on("data", (c: Buffer) => {
    split(c);
    if (!readySent && created >= total) {
      readySent = true;
      post({ type: "ready" });
    }
  });
  const onStatus = (h: http2.IncomingHttpHeaders) => {
    if (h["grpc-status"] !== undefined && h["grpc-status"] !== "0" && streamErrors.length < 5) streamErrors.push(`stream status ${String(h["grpc-status"])}: ${decodeURIComponent(String(h["grpc-message"] ?? ""))}`);
  };
  stream.on("response", onStatus);
  stream.on("trailers", onStatus);
  stream.on("error", (e) => { if (streamErrors.length < 5) streamErrors.push(`stream: ${e.message}`); });
  const c = codec("Watch", "Watch");
  const key = Buffer.from(spec.prefix);
  const rangeEnd = Buffer.from(spec.rangeEnd);
  const creates = Array.from({ length: spec.watchesPerStream }, () => frame(c.requestSerialize({ create_request: { key, range_end: rangeEnd } })));
  stream.write(Buffer.concat(creates));
}

function finish(): void {
  const acksNow = acks;
  for (let i = 0; i < pendingSeq.length; i++) {
    const ack = acksNow[pendingSeq[i]];
    if (ack > 0) {
      if (pendingAt[i] < ack) early++;
      ackHist[histIndex(pendingAt[i] - ack)]++;
    }
  }
  pendingSeq = [];
  pendingAt = [];
  post({ type: "done", result: { windowEvents, measuredEvents, early, totalEvents, ackHist, sendHist, canceled, streamErrors } });
  for (const s of sessions) s.destroy();
}

port.on("message", (m: WatchFromMain) => {
  if (m.type === "go") {
    recordFrom = m.recordFrom;
    deadline = m.deadline;
  } else finish();
});

try {
  for (let i = 0; i < spec.streams; i++) openStream();
} catch (e) {
  post({ type: "failed", message: (e as Error).message });
}
