/**
 * The one coded error type of mergekv, and the one table that maps each code
 * to a gRPC status and etcd's exact message (clients match on message text).
 */

/** Stable codes: callers match on these, never on message text. */
export type ErrorCode =
  | "ElectionNotLeader"
  | "ElectionNoLeader"
  | "MissingLeaderKey"
  | "LostDeleteWatch"
  | "Untranslated"
  | "KeyNotProvided"
  | "KeyNotFound"
  | "ValueProvided"
  | "LeaseProvided"
  | "LeaseNotFound"
  | "LeaseExists"
  | "LeaseTTLTooLarge"
  | "NoSpace"
  | "MemberNotFound"
  | "MemberNotLearner"
  | "LearnerNotReady"
  | "AuthNotEnabled"
  | "AuthFailed"
  | "InvalidAuthToken"
  | "AuthVerifyOnly"
  | "PermissionDenied"
  | "UserEmpty"
  | "UserExists"
  | "UserNotFound"
  | "RoleExists"
  | "RoleNotFound"
  | "RoleNotGranted"
  | "PermissionNotGranted"
  | "RootUserNotExist"
  | "RootRoleNotExist"
  | "InvalidAuthManagement"
  | "PeerURLExists"
  | "FutureRevision"
  | "Compacted"
  | "RequestTooLarge"
  | "MessageTooLarge"
  | "TooManyOps"
  | "DuplicateKey"
  | "InvalidArgument"
  | "Unavailable"
  | "Corrupt"
  | "CorruptCluster"
  | "BadLeaderTransferee"
  | "NoLeadership"
  | "UnknownService"
  | "Internal";

/** gRPC status codes (numeric, as on the wire). */
export const GrpcStatus = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

/** A code's name as Go prints it ("PermissionDenied"), which etcd puts in texts such as a watch's cancel_reason. */
export function statusName(code: number): string {
  return Object.keys(GrpcStatus).find((k) => GrpcStatus[k as keyof typeof GrpcStatus] === code) ?? `Code(${code})`;
}

/** code -> (gRPC status, etcd's message). Messages are etcd 3.4's, to the letter. */
export const ERROR_TABLE: Record<ErrorCode, { status: number; message: string }> = {
  KeyNotProvided: { status: GrpcStatus.InvalidArgument, message: "etcdserver: key is not provided" },
  KeyNotFound: { status: GrpcStatus.InvalidArgument, message: "etcdserver: key not found" },
  ValueProvided: { status: GrpcStatus.InvalidArgument, message: "etcdserver: value is provided" },
  LeaseProvided: { status: GrpcStatus.InvalidArgument, message: "etcdserver: lease is provided" },
  LeaseNotFound: { status: GrpcStatus.NotFound, message: "etcdserver: requested lease not found" },
  LeaseExists: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: lease already exists" },
  LeaseTTLTooLarge: { status: GrpcStatus.OutOfRange, message: "etcdserver: too large lease TTL" },
  AuthNotEnabled: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: authentication is not enabled" },
  AuthFailed: { status: GrpcStatus.InvalidArgument, message: "etcdserver: authentication failed, invalid user ID or password" },
  InvalidAuthToken: { status: GrpcStatus.Unauthenticated, message: "etcdserver: invalid auth token" },
  // etcd 3.4's v3election and v3lock send their recipes' errors untranslated, with code Unknown (2).
  ElectionNotLeader: { status: GrpcStatus.Unknown, message: "election: not leader" },
  ElectionNoLeader: { status: GrpcStatus.Unknown, message: "election: no leader" },
  MissingLeaderKey: { status: GrpcStatus.Unknown, message: '"leader" field must be provided' },
  LostDeleteWatch: { status: GrpcStatus.Unknown, message: "lost watcher waiting for delete" },
  // What their inner KV calls fail with reaches the caller as it does from etcd's in-process client: its message, code Unknown.
  Untranslated: { status: GrpcStatus.Unknown, message: "" },
  // etcd 3.4 sends this one untranslated, with code Unknown (2).
  AuthVerifyOnly: { status: GrpcStatus.Unknown, message: "auth: token signing attempted with verify-only key" },
  PermissionDenied: { status: GrpcStatus.PermissionDenied, message: "etcdserver: permission denied" },
  UserEmpty: { status: GrpcStatus.InvalidArgument, message: "etcdserver: user name is empty" },
  UserExists: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: user name already exists" },
  UserNotFound: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: user name not found" },
  RoleExists: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: role name already exists" },
  RoleNotFound: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: role name not found" },
  RoleNotGranted: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: role is not granted to the user" },
  PermissionNotGranted: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: permission is not granted to the role" },
  RootUserNotExist: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: root user does not exist" },
  RootRoleNotExist: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: root user does not have root role" },
  InvalidAuthManagement: { status: GrpcStatus.InvalidArgument, message: "etcdserver: invalid auth management" },
  MemberNotFound: { status: GrpcStatus.NotFound, message: "etcdserver: member not found" },
  MemberNotLearner: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: can only promote a learner member" },
  LearnerNotReady: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: can only promote a learner member which is in sync with leader" },
  PeerURLExists: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: Peer URLs already exists" },
  NoSpace: { status: GrpcStatus.ResourceExhausted, message: "etcdserver: mvcc: database space exceeded" },
  FutureRevision: { status: GrpcStatus.OutOfRange, message: "etcdserver: mvcc: required revision is a future revision" },
  Compacted: { status: GrpcStatus.OutOfRange, message: "etcdserver: mvcc: required revision has been compacted" },
  RequestTooLarge: { status: GrpcStatus.InvalidArgument, message: "etcdserver: request is too large" },
  MessageTooLarge: { status: GrpcStatus.ResourceExhausted, message: "grpc: received message larger than max" },
  TooManyOps: { status: GrpcStatus.InvalidArgument, message: "etcdserver: too many operations in txn request" },
  DuplicateKey: { status: GrpcStatus.InvalidArgument, message: "etcdserver: duplicate key given in txn request" },
  InvalidArgument: { status: GrpcStatus.InvalidArgument, message: "mergekv: invalid argument" },
  Unavailable: { status: GrpcStatus.Unavailable, message: "etcdserver: server stopped" },
  Corrupt: { status: GrpcStatus.DataLoss, message: "mergekv: corrupt data" },
  CorruptCluster: { status: GrpcStatus.DataLoss, message: "etcdserver: corrupt cluster" },
  BadLeaderTransferee: { status: GrpcStatus.FailedPrecondition, message: "etcdserver: bad leader transferee" },
  UnknownService: { status: GrpcStatus.NotFound, message: "unknown service" },
  NoLeadership: { status: GrpcStatus.FailedPrecondition, message: "mergekv: every member takes writes; there is no leadership to move" },
  Internal: { status: GrpcStatus.Internal, message: "mergekv: internal error" },
};

export class MergekvError extends Error {
  readonly code: ErrorCode;
  override readonly cause?: unknown;

  /** `detail` replaces the table's message only for codes etcd has no fixed text for. */
  constructor(code: ErrorCode, detail?: string, cause?: unknown) {
    super(detail ?? ERROR_TABLE[code].message);
    this.name = "MergekvError";
    this.code = code;
    this.cause = cause;
  }
}

export function isMergekvError(e: unknown): e is MergekvError {
  return e instanceof MergekvError;
}

/** Plain-object form, for crossing a worker boundary (classes do not survive structured clone). */
export interface WireError {
  code: ErrorCode;
  message: string;
}

export function toWireError(e: unknown): WireError {
  if (isMergekvError(e)) return { code: e.code, message: e.message };
  return { code: "Internal", message: e instanceof Error ? e.message : String(e) };
}

export function fromWireError(w: WireError): MergekvError {
  return new MergekvError(w.code, w.message);
}

/** Programmer-error assertion (TigerBeetle style): never for operating conditions. */
export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) throw new MergekvError("Internal", `assertion failed: ${what}`);
}
