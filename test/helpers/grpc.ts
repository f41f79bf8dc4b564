/**
 * A raw gRPC client for etcd's KV, Maintenance and Cluster services (and a
 * raw Watch stream), built
 * from the `etcd3` package's proto files with the loader options the server
 * and the etcd3 client use. Lets tests see the exact status `code` and
 * `details` a server answers, without any client-side translation or retry.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as path from "node:path";

const PROTO_DIR = path.dirname(require.resolve("etcd3/proto/rpc.proto"));
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Msg = Record<string, any>;

/** Our own receive limit: large enough never to be what rejects a test's response. */
const CLIENT_MESSAGE_BYTES_MAX = 64 * 1024 * 1024;
/** Unary deadline: a hung server fails the test instead of hanging it. */
const CALL_DEADLINE_MS = 20_000;

type Service = "KV" | "Maintenance" | "Cluster" | "Lease" | "Auth";

export interface RawClient {
  /** Calls `service.method` once, with `metadata` if given (e.g. an auth "token"); rejects with the grpc ServiceError (code, details). */
  call(service: Service, method: string, req: Msg, metadata?: grpc.Metadata): Promise<Msg>;
  close(): void;
}

let pkg: Record<string, grpc.ServiceClientConstructor> | undefined;

/** The etcdserverpb service constructors (for streams the unary `call` cannot make). */
export function services(): Record<string, grpc.ServiceClientConstructor> {
  if (!pkg) {
    const def = protoLoader.loadSync(path.join(PROTO_DIR, "rpc.proto"), { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
    pkg = (grpc.loadPackageDefinition(def) as any).etcdserverpb;
  }
  return pkg!;
}

export function rawClient(endpoint: string): RawClient {
  const options = { "grpc.max_receive_message_length": CLIENT_MESSAGE_BYTES_MAX, "grpc.max_send_message_length": CLIENT_MESSAGE_BYTES_MAX };
  const creds = grpc.credentials.createInsecure();
  const clients = new Map<Service, grpc.Client>();
  const client = (s: Service): any => {
    let c = clients.get(s);
    if (!c) {
      c = new (services()[s])(endpoint, creds, options);
      clients.set(s, c);
    }
    return c;
  };
  return {
    call(service, method, req, metadata = new grpc.Metadata()) {
      return new Promise((resolve, reject) => {
        const c = client(service);
        if (typeof c[method] !== "function") throw new Error(`no method ${service}.${method}`);
        c[method](req, metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (e: grpc.ServiceError | null, r: Msg) => (e ? reject(e) : resolve(r)));
      });
    },
    close() {
      for (const c of clients.values()) c.close();
    },
  };
}

/** The gRPC status of a call that must fail: resolves to { code, details }, throws if it succeeded. */
export async function grpcError(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    const r = await p;
    throw new Error(`expected a gRPC error, got a response: ${JSON.stringify(r).slice(0, 200)}`);
  } catch (e) {
    const err = e as Partial<grpc.ServiceError>;
    if (typeof err.code !== "number") throw e;
    return { code: err.code, details: err.details ?? "" };
  }
}

export const b = (s: string | Buffer): Buffer => (typeof s === "string" ? Buffer.from(s) : s);

/** One gRPC frame, as a raw HTTP/2 client sends it: the 5-byte prefix (compressed flag, length), then the message. */
export function framed(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** One raw Watch bidi stream: requests go out as written, responses queue up in arrival order. */
export interface RawWatchStream {
  send(req: Msg): void;
  /** Says the client has sent its last request (gRPC's half-close). */
  halfClose(): void;
  /** The next response; rejects after `timeoutMs` or if the stream ends first. */
  next(timeoutMs?: number): Promise<Msg>;
  /** Responses that arrived and were not taken yet. */
  readonly pending: Msg[];
  /** Stops reading (the server's writes back up through HTTP/2 flow control), and starts again. */
  pause(): void;
  resume(): void;
  /** The status the stream ended with; null while it is open. */
  status(): { code: number; details: string } | null;
  close(): void;
}

/** A watch response a test waits for longer than this is not coming. */
const WATCH_RESPONSE_WAIT_MS = 10_000;

/** `metadata`: sent when the stream opens (e.g. an auth "token"). */
export function watchStream(endpoint: string, metadata = new grpc.Metadata()): RawWatchStream {
  const client: any = new (services().Watch)(endpoint, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": CLIENT_MESSAGE_BYTES_MAX });
  const call = client.Watch(metadata);
  const pending: Msg[] = [];
  let wake: (() => void) | null = null;
  let ended: Error | null = null;
  let status: { code: number; details: string } | null = null;
  call.on("status", (st: grpc.StatusObject) => { status = { code: st.code, details: st.details }; });
  call.on("data", (m: Msg) => { pending.push(m); wake?.(); });
  call.on("error", (e: Error) => { ended = e; wake?.(); });
  call.on("end", () => { ended ??= new Error("watch stream ended"); wake?.(); });
  return {
    pending,
    status: () => status,
    pause: () => call.pause(),
    resume: () => call.resume(),
    send: (req) => call.write(req),
    halfClose: () => call.end(),
    async next(timeoutMs = WATCH_RESPONSE_WAIT_MS) {
      const deadline = Date.now() + timeoutMs;
      while (pending.length === 0) {
        if (ended) throw ended;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no watch response in ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => { clearTimeout(timer); resolve(); };
        });
        wake = null;
      }
      return pending.shift()!;
    },
    close() {
      call.cancel();
      client.close();
    },
  };
}
