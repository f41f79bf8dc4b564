/**
 * The one interface behind auth tokens (etcd's --auth-token): a provider
 * issues a token for a user and later says whom a token stands for. Two
 * implementations: simple tokens (simple-tokens.ts: random, held in memory,
 * lost on restart) and JWTs (jwt-tokens.ts: signed, stateless, valid across
 * restarts until they expire).
 *
 * A provider only answers "who, issued at which auth revision"; whether that
 * user still exists, and whether a later change (a new password, auth
 * enabled again) has voided the token, the AuthStore decides from its own
 * state, the same way for both kinds.
 */
import { MergekvError } from "../errors";

/** What a valid token says: the user, and the auth revision it was issued at. */
export interface TokenClaims {
  user: string;
  revision: number;
}

export interface TokenProvider {
  /** "simple" or "jwt". */
  readonly kind: "simple" | "jwt";

  /**
   * A new token for `user`, issued at auth revision `revision`.
   * Throws AuthVerifyOnly (a JWT provider given only a public key) or
   * Unavailable (too many live simple tokens).
   */
  issue(user: string, revision: number): string;

  /** The claims of `token`, or undefined if it is unknown, expired, forged or malformed. Never throws. */
  identify(token: string): TokenClaims | undefined;

  /** Drops the tokens this provider holds for `user` (a no-op for stateless JWTs). */
  forget(user: string): void;

  /** Drops every token this provider holds (auth disabled; a no-op for stateless JWTs). */
  clear(): void;
}

/** A bad --auth-token value: InvalidArgument (the process exits 2 at start), naming the flag. */
export function authTokenOptionError(detail: string): MergekvError {
  return new MergekvError("InvalidArgument", `--auth-token: ${detail}`);
}
