/**
 * The one place where every unary RPC is checked, its error translated
 * through ERROR_TABLE, and its header filled: handlers only call the engine.
 */
import Long from "long";
import { ERROR_TABLE, GrpcStatus, MergekvError, isMergekvError, statusName } from "../errors";
import { CallStatus, ServerCall } from "./grpc-call";
import { Handler } from "./grpc-server";
import { Wire } from "./convert";
import { grpcLatency, grpcRequests } from "../metrics";
import { AuthStore } from "../backend/auth";
import { ROOT_ONLY } from "./permissions";

/** etcd's --max-request-bytes default: larger requests get "request is too large". */
export const REQUEST_BYTES_MAX = 1.5 * 1024 * 1024;
/** etcd's gRPC receive limit is the request limit plus this overhead. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;
/** The transport's own receive limit, at least: what is over the message limit but under this gets etcd's exact error. */
export const TRANSPORT_BYTES_MAX = 64 * 1024 * 1024;

/** What a message may weigh for a given --max-request-bytes (etcd's gRPC MaxRecvMsgSize). */
export const messageBytesMax = (requestBytesMax: number): number => requestBytesMax + GRPC_OVERHEAD_BYTES;
/** The transport's receive limit for a given --max-request-bytes (above the message limit, so etcd's error is ours to send). */
export const transportBytesMax = (requestBytesMax: number): number => Math.max(TRANSPORT_BYTES_MAX, 2 * messageBytesMax(requestBytesMax));

export interface HeaderSource {
  clusterId: string;
  memberId: string;
  raftTerm: number;
}

/** A handler's answer: the response body and the revision its header carries. */
export interface Answer {
  revision: number;
  body: Wire;
}

/** The caller, as the `token` metadata identified them (undefined: auth is off, or a public call). */
export interface Caller {
  user: string | undefined;
}

/** `call`: for the few handlers that must know when the caller goes away (see `whenClosed`). */
export type UnaryHandler = (req: Wire, caller: Caller, call: ServerCall) => Promise<Answer>;

/** What every RPC wrapper needs from the server. */
export interface RpcContext {
  headers: HeaderSource;
  auth: AuthStore;
  onInternalError: (e: unknown) => void;
  /** The server's --max-request-bytes. */
  readonly requestBytesMax: number;
}

export interface UnaryOptions {
  /** etcd applies the 1.5 MiB request limit only to what goes through its log, not to reads. */
  readOnly?: boolean;
  /** Answered without a token even when auth is on (Authenticate, Status, MemberList). */
  public?: boolean;
  /** The handler identifies its caller itself (the KV calls: after checking the request's form, as etcd). */
  identifiesCaller?: boolean;
}

/** The token a call carries: etcd clients send it as metadata "token", the gateway as "authorization"; etcd reads either. */
export function tokenOf(call: ServerCall): string | undefined {
  return call.metadata("token") ?? call.metadata("authorization");
}

export function unary(ctx: RpcContext, handle: UnaryHandler, opts: UnaryOptions = {}): Handler {
  const { headers } = ctx;
  const onError = ctx.onInternalError;
  const readOnly = !!opts.readOnly;
  const requestMax = ctx.requestBytesMax;
  const messageMax = messageBytesMax(requestMax);
  return (call) => {
    const metrics = metricsOf(call.path);
    const stopTimer = metrics.latency.startTimer();
    const req = call.request as Wire;
    const size = call.requestBytes;
    let work: Promise<Answer>;
    if (size > messageMax) {
      work = Promise.reject(new MergekvError("MessageTooLarge", `grpc: received message larger than max (${size} vs. ${messageMax})`));
    } else if (size > requestMax && !readOnly) {
      work = Promise.reject(new MergekvError("RequestTooLarge"));
    } else {
      try {
        const caller = { user: opts.public || opts.identifiesCaller ? undefined : ctx.auth.identify(tokenOf(call)) };
        work = handle(req, caller, call);
      } catch (e) {
        work = Promise.reject(e);
      }
    }
    work.then(
      (a) => {
        stopTimer();
        metrics.ok.inc();
        call.reply({ header: header(headers, a.revision), ...a.body });
      },
      (e) => {
        stopTimer();
        if (!isMergekvError(e) || e.code === "Internal") onError?.(e);
        const status = toStatus(e);
        grpcRequests.inc({ method: metrics.method, code: String(status.code) });
        call.fail(status);
      },
    );
  };
}

/** A unary call only root may make once auth is on (maintenance, cluster changes, auth management). */
export function rootUnary(ctx: RpcContext, handle: UnaryHandler): Handler {
  return unary(ctx, async (req, caller, call) => {
    ctx.auth.authorize(caller.user, ROOT_ONLY);
    return handle(req, caller, call);
  });
}

/**
 * A method's labelled metrics, looked up once per path: labelling a metric
 * on every call (prom-client hashes the label object) was 5% of the main
 * thread under a put load.
 */
interface MethodMetrics {
  /** "/etcdserverpb.KV/Range" -> "KV/Range". */
  method: string;
  latency: ReturnType<typeof grpcLatency.labels>;
  ok: ReturnType<typeof grpcRequests.labels>;
}

const methodMetrics = new Map<string, MethodMetrics>();

function metricsOf(path: string): MethodMetrics {
  let m = methodMetrics.get(path);
  if (!m) {
    const method = path.replace(/^\/etcdserverpb\./, "");
    m = { method, latency: grpcLatency.labels(method), ok: grpcRequests.labels(method, "OK") };
    methodMetrics.set(path, m);
  }
  return m;
}

/**
 * uint64 ids (decimal strings) as the Long values the encoder wants: given a
 * string, protobufjs parses it on every message (12% of the main thread in
 * the watch fan-out profile).
 */
const longIds = new Map<string, Long>();
function longId(id: string): Long {
  let l = longIds.get(id);
  if (!l) longIds.set(id, (l = Long.fromString(id, true)));
  return l;
}

/**
 * The caller of a streaming call, identified by its token; null when the
 * token is refused, and the call has then been failed with the reason.
 */
export function streamCaller(ctx: RpcContext, call: ServerCall): Caller | null {
  try {
    return { user: ctx.auth.identify(tokenOf(call)) };
  } catch (e) {
    call.fail(toStatus(e));
    return null;
  }
}

/** Aborts when the call is over for any reason (answered, canceled by the client, past its deadline, connection lost). */
export function whenClosed(call: ServerCall): AbortSignal {
  const ac = new AbortController();
  if (call.closed) ac.abort();
  else call.once("close", () => ac.abort());
  return ac.signal;
}

export function header(h: HeaderSource, revision: number): Wire {
  return { cluster_id: longId(h.clusterId), member_id: longId(h.memberId), revision, raft_term: h.raftTerm };
}

/**
 * The text Go gives a gRPC status error, which etcd sends as a watch's
 * cancel_reason: "rpc error: code = PermissionDenied desc = etcdserver: permission denied".
 */
export function statusText(e: unknown): string {
  const s = toStatus(e);
  return `rpc error: code = ${statusName(s.code)} desc = ${s.message}`;
}

/** The status an error ends a call with: etcd's code and text for ours, INTERNAL for anything else. */
export function toStatus(e: unknown): CallStatus {
  if (isMergekvError(e)) return { code: ERROR_TABLE[e.code].status, message: e.message };
  return { code: GrpcStatus.Internal, message: `mergekv: internal error: ${(e as Error)?.message ?? String(e)}` };
}
