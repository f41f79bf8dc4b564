/**
 * etcd's simple tokens ("--auth-token simple", the default): a random string
 * and a counter, mapped in memory to the user. A token lives `ttlMs` past
 * its last use (etcd's --auth-token-ttl); after a restart clients
 * authenticate again.
 */
import { randomBytes } from "node:crypto";
import { MergekvError } from "../errors";
import { TokenClaims, TokenProvider } from "./token-provider";

/** etcd's --auth-token-ttl default: a simple token lives 300 s past its last use. */
export const TOKEN_TTL_MS = 300_000;
/** Tokens held at once: bounds memory if clients authenticate in a loop. */
export const TOKENS_MAX = 100_000;
/** Random bytes in a token: unguessable (128 bits). */
const TOKEN_RANDOM_BYTES = 16;

interface Held extends TokenClaims {
  expiresAtMs: number;
}

export interface SimpleTokenOptions {
  /** How long a token lives past its last use (default TOKEN_TTL_MS). */
  ttlMs?: number;
  /** The clock, in ms (tests move it by hand). */
  now?: () => number;
}

export class SimpleTokens implements TokenProvider {
  readonly kind = "simple";
  private readonly tokens = new Map<string, Held>();
  private counter = 0;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(o: SimpleTokenOptions = {}) {
    this.ttlMs = o.ttlMs ?? TOKEN_TTL_MS;
    this.now = o.now ?? Date.now;
    if (!Number.isFinite(this.ttlMs) || this.ttlMs <= 0) throw new MergekvError("InvalidArgument", `--auth-token-ttl must be positive, got ${this.ttlMs} ms`);
  }

  /** A fresh token; throws Unavailable when TOKENS_MAX live tokens are held. */
  issue(user: string, revision: number): string {
    if (this.tokens.size >= TOKENS_MAX) this.dropExpired();
    if (this.tokens.size >= TOKENS_MAX) throw new MergekvError("Unavailable", "mergekv: too many live auth tokens");
    const token = `${randomBytes(TOKEN_RANDOM_BYTES).toString("hex")}.${++this.counter}`;
    this.tokens.set(token, { user, revision, expiresAtMs: this.now() + this.ttlMs });
    return token;
  }

  /** The token's claims if it is held and not expired; a use extends its life by the TTL. */
  identify(token: string): TokenClaims | undefined {
    const held = this.tokens.get(token);
    if (!held) return undefined;
    if (held.expiresAtMs <= this.now()) {
      this.tokens.delete(token);
      return undefined;
    }
    held.expiresAtMs = this.now() + this.ttlMs;
    return { user: held.user, revision: held.revision };
  }

  forget(user: string): void {
    for (const [t, v] of this.tokens) if (v.user === user) this.tokens.delete(t);
  }

  clear(): void {
    this.tokens.clear();
  }

  /** Live tokens held (for tests and bounds). */
  get size(): number {
    return this.tokens.size;
  }

  private dropExpired(): void {
    const now = this.now();
    for (const [t, v] of this.tokens) if (v.expiresAtMs <= now) this.tokens.delete(t);
  }
}
