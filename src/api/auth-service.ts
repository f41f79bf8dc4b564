/**
 * etcd's Auth service: enable/disable, authenticate, users, roles,
 * permissions. Everything but Authenticate and AuthStatus needs root once
 * auth is on; the AuthStore decides.
 */
import { Engine } from "../server";
import { PermType } from "../backend/auth";
import { keyToBytes } from "../persist/encoding";
import { rootUnary, unary, UnaryHandler, UnaryOptions } from "./rpc";
import { key as wireKey, Wire } from "./convert";
import { ServiceImplementation } from "./grpc-server";

const PERM_TYPES: PermType[] = ["Read", "Write", "Readwrite"];

export function authService(engine: Engine): ServiceImplementation {
  const auth = () => engine.auth;
  const h = (fn: UnaryHandler, opts?: UnaryOptions) => unary(engine, fn, opts);
  /** Root only (when auth is on); answers with an empty body and the auth revision in the header. */
  const admin = (fn: (req: Wire) => Promise<Wire | void>) => rootUnary(engine, async (req) => {
    const body = (await fn(req)) ?? {};
    return { revision: engine.backend.revision, body };
  });
  return {
    AuthEnable: admin(() => auth().enable()),
    AuthDisable: admin(() => auth().disable()),
    AuthStatus: h(async () => ({ revision: engine.backend.revision, body: { enabled: auth().enabled, authRevision: String(auth().revision) } }), { public: true }),
    Authenticate: h(async (req) => ({ revision: engine.backend.revision, body: { token: await auth().authenticate(String(req.name ?? ""), String(req.password ?? "")) } }), { public: true }),
    UserAdd: admin((req) => auth().userAdd(String(req.name ?? ""), String(req.password ?? ""), !!req.options?.no_password)),
    UserGet: admin(async (req) => ({ roles: auth().userGet(String(req.name ?? "")) })),
    UserList: admin(async () => ({ users: auth().userList() })),
    UserDelete: admin((req) => auth().userDelete(String(req.name ?? ""))),
    UserChangePassword: admin((req) => auth().userChangePassword(String(req.name ?? ""), String(req.password ?? ""))),
    UserGrantRole: admin((req) => auth().userGrantRole(String(req.user ?? ""), String(req.role ?? ""))),
    UserRevokeRole: admin((req) => auth().userRevokeRole(String(req.name ?? ""), String(req.role ?? ""))),
    RoleAdd: admin((req) => auth().roleAdd(String(req.name ?? ""))),
    RoleGet: admin(async (req) => ({
      perm: auth().roleGet(String(req.role ?? "")).map((p) => ({ permType: p.permType, key: keyToBytes(p.key), range_end: keyToBytes(p.rangeEnd) })),
    })),
    RoleList: admin(async () => ({ roles: auth().roleList() })),
    RoleDelete: admin((req) => auth().roleDelete(String(req.role ?? ""))),
    RoleGrantPermission: admin((req) => {
      const perm = req.perm ?? {};
      const permType = PERM_TYPES.includes(perm.permType) ? (perm.permType as PermType) : "Read";
      return auth().roleGrantPermission(String(req.name ?? ""), { permType, key: wireKey(perm.key), rangeEnd: wireKey(perm.range_end) });
    }),
    RoleRevokePermission: admin((req) => auth().roleRevokePermission(String(req.role ?? ""), wireKey(req.key), wireKey(req.range_end))),
  };
}
