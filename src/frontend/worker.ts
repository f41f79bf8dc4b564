/**
 * A frontend worker thread: one replica under its own actor id, executing
 * the requests the main thread routes to it.
 */
import { parentPort } from "node:worker_threads";
import { randomBytes } from "node:crypto";
import { Replica } from "../backend/replica";
import { Loan } from "../backend/stored-docs";
import { ownerOf } from "../backend/buckets";
import { Envelope } from "../backend/backend";
import { ActorId } from "../persist/encoding";
import { toWireError } from "../errors";
import { Executor } from "./executor";
import { warmUp } from "./warm-up";
import { FromFrontend, Outbox, ResponseItem, ToFrontend } from "./messages";
import { EarlyReply } from "./executor";
import { AppliedEntry } from "../backend/replica";

const port = parentPort!;
const post = (m: FromFrontend) => port.postMessage(m);

let executor: Executor | null = null;
let acked = 0;
let acknowledge = false;
/** What the last message told the pool about Executor.awaitingApplied. */
let awaitingSent = false;
function noteAwaiting(): boolean {
  awaitingSent = executor?.awaitingApplied ?? false;
  return awaitingSent;
}
const responses = new Outbox<ResponseItem>((items) => post({ type: "responses", ack: acked, items, awaiting: noteAwaiting() }));
let replies: EarlyReply[] = [];
const envelopes = new Outbox<Envelope>((items) => {
  const r = replies;
  replies = [];
  post({ type: "envelopes", items, ...(r.length > 0 ? { replies: r } : {}), awaiting: noteAwaiting() });
});

/**
 * Once a message is handled (and what it woke has run), a frontend that now
 * waits for applied entries, and has not said so, says so: the pool holds
 * them back otherwise.
 */
let awaitCheck = false;
function checkAwaiting(): void {
  if (awaitCheck) return;
  awaitCheck = true;
  setImmediate(() => {
    awaitCheck = false;
    if (!awaitingSent && executor?.awaitingApplied) responses.ping();
  });
}
const fetches = new Map<number, (loans: Loan[]) => void>();
let nextFetch = 1;

/** Borrows documents from the backend, after every envelope sent so far. */
function fetchBuckets(buckets: [number, number][]): Promise<Loan[]> {
  const id = nextFetch++;
  envelopes.flushNow();
  post({ type: "fetch", id, buckets });
  return new Promise((resolve) => fetches.set(id, resolve));
}

function applied(entries: AppliedEntry[]): void {
  executor!.onApplied(entries);
  acked = entries[entries.length - 1].rev;
  if (acknowledge) responses.ping(); // the ack goes out even when no request of ours completed
}

function handle(m: ToFrontend): void {
  switch (m.type) {
    case "init": {
      // A fresh actor for every process start: a crash can never make two histories share one.
      const actor = randomBytes(16).toString("hex") as ActorId;
      const replica = new Replica(actor, { owns: (b) => ownerOf(b, m.frontends) === m.index });
      replica.bootstrap(m.bootstrap);
      const ship = (e: Envelope, reply?: EarlyReply) => {
        if (reply) replies.push(reply);
        envelopes.push(e);
      };
      executor = new Executor(replica, ship, fetchBuckets, m.bootstrap.leases, m.txnOpsMax);
      acked = replica.rev;
      acknowledge = m.acknowledge;
      warmUp().then(
        (report) => post({ type: "ready", actor: replica.actor, rev: replica.rev, warmUp: report }),
        (e) => post({ type: "fatal", message: `warm-up failed: ${(e as Error).stack ?? e}` }),
      );
      return;
    }
    case "requests":
      if (m.applied) applied(m.applied);
      if (m.leases) executor!.onLeases(m.leases);
      for (const item of m.items) {
        executor!.execute(item.request, item.minRev, item.id).then(
          (r) => {
            if (!r.replied) responses.push({ id: item.id, ok: true, revision: r.revision, result: r.result });
          },
          (e) => responses.push({ id: item.id, ok: false, error: toWireError(e) }),
        );
      }
      return;
    case "applied":
      applied(m.entries);
      return;
    case "buckets":
      fetches.get(m.id)?.(m.loans);
      fetches.delete(m.id);
      return;
    case "compact":
      executor!.onCompact(m.rev);
      return;
    case "acknowledge":
      acknowledge = m.on;
      if (acknowledge) responses.ping(); // what it applied so far counts at once
      return;
    case "stop":
      port.close();
      return;
  }
}

port.on("message", (m: ToFrontend) => {
  try {
    handle(m);
    checkAwaiting();
  } catch (e) {
    post({ type: "fatal", message: (e as Error).stack ?? String(e) });
  }
});
