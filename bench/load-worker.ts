/**
 * One load-generating thread: opens its channels, says "ready", then runs its
 * request loops between the times the main thread gives it and reports the
 * latency of every op it recorded.
 */
import { parentPort, workerData } from "node:worker_threads";
import { randomBytes } from "node:crypto";
import { KvClient, makeClient, TXN_OPS_MAX } from "./clients";
import { FromWorker, Go, Stop, ThreadResult, ThreadSpec, keyOf, prng } from "./workload";

/** Distinct values each thread cycles through (random bytes made once). */
const VALUE_POOL = 64;
/** A thread that sees this many errors stops issuing requests (the run is reported as failed). */
const ERRORS_MAX = 1_000;
/** Error messages kept for the report. */
const ERROR_SAMPLES_MAX = 5;

const spec = workerData as ThreadSpec;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

const random = prng(spec.seed);
const values = Array.from({ length: VALUE_POOL }, () => randomBytes(spec.valueBytes));
const keys = spec.workload === "fill" ? [] : Array.from({ length: spec.keyspace }, (_, i) => keyOf(i));
const clients: KvClient[] = Array.from({ length: spec.channels }, () => makeClient(spec.client, spec.endpoint));

const starts = new Float64Array(spec.samplesMax);
const latencies = new Float64Array(spec.samplesMax);
let recorded = 0;
let completed = 0;
let keysWritten = 0;
let casSucceeded = 0;
let casFailed = 0;
let errorCount = 0;
const errors: Record<string, number> = {};
const errorSamples: string[] = [];
let nextFill = spec.fillFrom;
let valueIndex = 0;
let stopped = false;

const now = () => performance.timeOrigin + performance.now();
const randomKey = () => keys[Math.floor(random() * keys.length)];
const nextValue = () => values[valueIndex++ % VALUE_POOL];

function noteError(e: unknown): void {
  errorCount++;
  const err = e as { code?: number | string; name?: string; message?: string };
  const code = String(err.code ?? err.name ?? "unknown");
  errors[code] = (errors[code] ?? 0) + 1;
  if (errorSamples.length < ERROR_SAMPLES_MAX) errorSamples.push(`${code}: ${err.message ?? String(e)}`);
}

/** One op of the workload; false when there is nothing left to do (fill done). */
async function op(client: KvClient): Promise<boolean> {
  switch (spec.workload) {
    case "put":
      await client.put(randomKey(), nextValue());
      return true;
    case "get":
      await client.getSerializable(randomKey());
      return true;
    case "cas": {
      const key = randomKey();
      const mod = await client.modRevision(key);
      if (await client.casPut(key, mod, nextValue())) casSucceeded++;
      else casFailed++;
      return true;
    }
    case "fill": {
      if (nextFill >= spec.fillTo) return false;
      const from = nextFill;
      const to = Math.min(spec.fillTo, from + Math.min(spec.fillBatch, TXN_OPS_MAX));
      nextFill = to;
      const batch: Buffer[] = [];
      for (let i = from; i < to; i++) batch.push(keyOf(i));
      if (batch.length === 1) await client.put(batch[0], nextValue());
      else await client.putMany(batch, nextValue());
      keysWritten += batch.length;
      return true;
    }
  }
}

async function loop(client: KvClient, go: Go): Promise<void> {
  while (errorCount < ERRORS_MAX && !stopped) {
    const started = now();
    if (started >= go.deadlineMs) return;
    try {
      if (!(await op(client))) return;
    } catch (e) {
      noteError(e);
      continue;
    }
    completed++;
    if (started >= go.recordFromMs && recorded < spec.samplesMax) {
      starts[recorded] = started;
      latencies[recorded] = now() - started;
      recorded++;
    }
  }
}

async function run(go: Go): Promise<void> {
  await Promise.all(Array.from({ length: spec.loops }, (_, i) => loop(clients[i % clients.length], go)));
  for (const c of clients) c.close();
  const result: ThreadResult = {
    starts: starts.slice(0, recorded),
    latencies: latencies.slice(0, recorded),
    completed, keysWritten, casSucceeded, casFailed, errors, errorSamples,
  };
  port.postMessage({ type: "done", result } satisfies FromWorker, [result.starts.buffer as ArrayBuffer, result.latencies.buffer as ArrayBuffer]);
}

/** Opens every channel with one cheap request so connection set-up is not measured. */
async function connect(): Promise<void> {
  await Promise.all(clients.map((c) => c.getSerializable(keyOf(0))));
}

port.on("message", (m: Go | Stop) => {
  if (m.type === "go") run(m).catch((e) => post({ type: "failed", message: (e as Error).stack ?? String(e) }));
  else if (m.type === "stop") stopped = true;
});
connect().then(() => post({ type: "ready" }), (e) => post({ type: "failed", message: `connect ${spec.endpoint}: ${(e as Error).message}` }));
