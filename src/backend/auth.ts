/**
 * Authentication and authorization as etcd 3.4 has them: users with scrypt-
 * hashed passwords, roles with key-range permissions, tokens (simple or JWT,
 * from a TokenProvider), and the root user/role. Persisted as one
 * checksummed meta record ("auth").
 *
 * Invariant: a token is accepted only while auth is on, its user exists, and
 * it was issued at an auth revision no older than the last change that ends
 * sessions: enabling auth (for everyone), adding the user or changing their
 * password (for that user). Checked here, the same way for both kinds, so a
 * stateless JWT is voided by a new password just as a simple token is.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { ChangeLog } from "../persist/changelog";
import { MergekvError } from "../errors";
import { inRange } from "./mvcc";
import { TokenProvider } from "./token-provider";
import { SimpleTokens } from "./simple-tokens";

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export type PermType = "Read" | "Write" | "Readwrite";
export interface Permission { permType: PermType; key: string; rangeEnd: string }
/** `tokensFrom`: tokens issued at an auth revision below it are void (absent in records written before JWTs: 0). */
interface User { name: string; salt: string; hash: string; noPassword: boolean; roles: string[]; tokensFrom?: number }
interface Role { name: string; perms: Permission[] }
interface AuthState { enabled: boolean; revision: number; users: User[]; roles: Role[]; tokensFrom?: number }

export const ROOT = "root";
const HASH_BYTES = 32;
const META_NAME = "auth";

/** What a request needs: read or write access to a key range, or to be root. */
export type Need = { access: "read" | "write"; key: string; rangeEnd: string } | { access: "root" };

export class AuthStore {
  private state: AuthState = { enabled: false, revision: 1, users: [], roles: [] };

  private constructor(private readonly log: ChangeLog, private readonly tokens: TokenProvider) {}

  /** The persisted auth state; tokens from `tokens` (default: simple tokens, etcd's default). Throws Corrupt. */
  static async load(log: ChangeLog, tokens: TokenProvider = new SimpleTokens()): Promise<AuthStore> {
    const a = new AuthStore(log, tokens);
    const stored = await log.getJsonMeta(META_NAME);
    if (stored) a.state = stored as AuthState;
    return a;
  }

  get enabled(): boolean { return this.state.enabled; }
  get revision(): number { return this.state.revision; }

  /**
   * The user a token stands for; undefined when auth is off. Throws UserEmpty
   * for no token, InvalidAuthToken for one that is unknown, expired, forged,
   * of a deleted user, or issued before a change that ended its session.
   */
  identify(token: string | undefined): string | undefined {
    if (!this.state.enabled) return undefined;
    if (token === undefined) throw new MergekvError("UserEmpty"); // an empty token is a bad token, as in etcd
    const claims = this.tokens.identify(token);
    const u = claims && this.user(claims.user);
    if (!u || claims.revision < Math.max(this.state.tokensFrom ?? 0, u.tokensFrom ?? 0)) throw new MergekvError("InvalidAuthToken");
    return u.name;
  }

  /** Throws PermissionDenied unless `user` may do everything in `needs` (always allowed when auth is off). */
  authorize(user: string | undefined, needs: Need[]): void {
    if (!this.state.enabled) return;
    const u = user === undefined ? undefined : this.user(user);
    if (!u) throw new MergekvError("UserEmpty");
    if (u.roles.includes(ROOT)) return;
    for (const need of needs) {
      if (need.access === "root" || !this.covered(u, need.access, need.key, need.rangeEnd)) throw new MergekvError("PermissionDenied");
    }
  }

  /** Whether the union of the user's permissions of that kind covers [key, rangeEnd). */
  private covered(u: User, access: "read" | "write", key: string, rangeEnd: string): boolean {
    const perms = u.roles.flatMap((r) => this.role(r)?.perms ?? []).filter((p) => p.permType === "Readwrite" || p.permType.toLowerCase() === access);
    if (rangeEnd === "") return perms.some((p) => inRange(key, p.key, p.rangeEnd));
    // Walk from `key`, extending over permissions that start at or before the point reached.
    // A single-key permission on "" ends at "\0" but is not open-ended: hence `open`.
    const intervals = perms.map((p) => ({ start: p.key, end: p.rangeEnd === "" ? p.key + "\u0000" : p.rangeEnd, open: p.rangeEnd === "\u0000" }));
    let at = key;
    for (let moved = true; moved; ) {
      moved = false;
      for (const iv of intervals) {
        if (iv.start <= at && (iv.open || iv.end > at)) {
          if (iv.open) return true; // covers everything onwards
          at = iv.end;
          moved = true;
        }
      }
      if (rangeEnd !== "\u0000" && at >= rangeEnd) return true;
    }
    return false;
  }

  /**
   * A token for the user if the password matches. Throws AuthNotEnabled,
   * AuthFailed, AuthVerifyOnly (JWT with a public key only) or Unavailable
   * (too many simple tokens).
   */
  async authenticate(name: string, password: string): Promise<string> {
    if (!this.state.enabled) throw new MergekvError("AuthNotEnabled");
    // Issued at the revision the password was checked against: a password changed meanwhile voids it.
    const revision = this.state.revision;
    const u = this.user(name);
    if (!u || u.noPassword || !(await matches(password, u))) throw new MergekvError("AuthFailed");
    return this.tokens.issue(name, revision);
  }

  /** Turns auth on; tokens issued before (in an earlier enabled period) stay void. */
  async enable(): Promise<void> {
    const root = this.user(ROOT);
    if (!root) throw new MergekvError("RootUserNotExist");
    if (!root.roles.includes(ROOT)) throw new MergekvError("RootRoleNotExist");
    await this.change((s) => {
      s.enabled = true;
      s.tokensFrom = s.revision;
    });
  }

  async disable(): Promise<void> {
    this.tokens.clear();
    await this.change((s) => { s.enabled = false; });
  }

  async userAdd(name: string, password: string, noPassword: boolean): Promise<void> {
    if (!name) throw new MergekvError("UserEmpty");
    if (this.user(name)) throw new MergekvError("UserExists");
    const salt = randomBytes(16);
    const hash = noPassword ? Buffer.alloc(0) : await scrypt(password, salt, HASH_BYTES);
    await this.change((s) => s.users.push({ name, salt: salt.toString("hex"), hash: hash.toString("hex"), noPassword, roles: [], tokensFrom: s.revision }));
  }

  userGet(name: string): string[] {
    return [...this.mustUser(name).roles].sort();
  }

  userList(): string[] { return this.state.users.map((u) => u.name).sort(); }
  roleList(): string[] { return this.state.roles.map((r) => r.name).sort(); }

  async userDelete(name: string): Promise<void> {
    this.mustUser(name);
    if (this.state.enabled && name === ROOT) throw new MergekvError("InvalidAuthManagement");
    await this.change((s) => { s.users = s.users.filter((u) => u.name !== name); });
    this.tokens.forget(name);
  }

  async userChangePassword(name: string, password: string): Promise<void> {
    this.mustUser(name);
    const salt = randomBytes(16);
    const hash = await scrypt(password, salt, HASH_BYTES);
    await this.change((s) => {
      const u = s.users.find((x) => x.name === name)!;
      u.salt = salt.toString("hex");
      u.hash = hash.toString("hex");
      u.noPassword = false;
      u.tokensFrom = s.revision; // as etcd: a new password ends the sessions the old one opened
    });
    this.tokens.forget(name);
  }

  async userGrantRole(name: string, role: string): Promise<void> {
    this.mustUser(name);
    if (role !== ROOT && !this.role(role)) throw new MergekvError("RoleNotFound");
    await this.change((s) => {
      const u = s.users.find((x) => x.name === name)!;
      if (!u.roles.includes(role)) u.roles.push(role);
    });
  }

  async userRevokeRole(name: string, role: string): Promise<void> {
    const u = this.mustUser(name);
    if (!u.roles.includes(role)) throw new MergekvError("RoleNotGranted");
    if (this.state.enabled && name === ROOT && role === ROOT) throw new MergekvError("InvalidAuthManagement");
    await this.change((s) => {
      const x = s.users.find((y) => y.name === name)!;
      x.roles = x.roles.filter((r) => r !== role);
    });
  }

  async roleAdd(name: string): Promise<void> {
    if (!name) throw new MergekvError("InvalidArgument", "etcdserver: role name is empty");
    if (this.role(name)) throw new MergekvError("RoleExists");
    await this.change((s) => s.roles.push({ name, perms: [] }));
  }

  roleGet(name: string): Permission[] {
    if (name === ROOT && !this.role(ROOT)) return [];
    const r = this.role(name);
    if (!r) throw new MergekvError("RoleNotFound");
    return r.perms.map((p) => ({ ...p }));
  }

  async roleDelete(name: string): Promise<void> {
    if (!this.role(name)) throw new MergekvError("RoleNotFound");
    if (this.state.enabled && name === ROOT) throw new MergekvError("InvalidAuthManagement");
    await this.change((s) => {
      s.roles = s.roles.filter((r) => r.name !== name);
      for (const u of s.users) u.roles = u.roles.filter((r) => r !== name);
    });
  }

  async roleGrantPermission(name: string, perm: Permission): Promise<void> {
    if (!this.role(name)) throw new MergekvError("RoleNotFound");
    await this.change((s) => {
      const r = s.roles.find((x) => x.name === name)!;
      const same = r.perms.find((p) => p.key === perm.key && p.rangeEnd === perm.rangeEnd);
      if (same) same.permType = perm.permType;
      else r.perms.push(perm);
      r.perms.sort((a, b) => compare(a.key, b.key) || compare(a.rangeEnd, b.rangeEnd)); // etcd keeps them by key
    });
  }

  async roleRevokePermission(name: string, key: string, rangeEnd: string): Promise<void> {
    const r = this.role(name);
    if (!r) throw new MergekvError("RoleNotFound");
    if (!r.perms.some((p) => p.key === key && p.rangeEnd === rangeEnd)) throw new MergekvError("PermissionNotGranted");
    await this.change((s) => {
      const x = s.roles.find((y) => y.name === name)!;
      x.perms = x.perms.filter((p) => !(p.key === key && p.rangeEnd === rangeEnd));
    });
  }

  private user(name: string): User | undefined { return this.state.users.find((u) => u.name === name); }
  private role(name: string): Role | undefined { return this.state.roles.find((r) => r.name === name); }

  private mustUser(name: string): User {
    const u = this.user(name);
    if (!u) throw new MergekvError("UserNotFound");
    return u;
  }

  /** Applies a change to a copy (already at the next revision), persists it, then makes it current. */
  private async change(edit: (s: AuthState) => void): Promise<void> {
    const next = JSON.parse(JSON.stringify(this.state)) as AuthState;
    next.revision = this.state.revision + 1;
    edit(next);
    await this.log.putJsonMeta(META_NAME, next);
    this.state = next;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function matches(password: string, u: User): Promise<boolean> {
  const expected = Buffer.from(u.hash, "hex");
  const actual = await scrypt(password, Buffer.from(u.salt, "hex"), HASH_BYTES);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
