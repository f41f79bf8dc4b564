/**
 * The --auth-token flag as etcd 3.4 takes it, turned into a TokenProvider:
 *
 *   simple                                  (the default)
 *   jwt,sign-method=RS256,priv-key=FILE,pub-key=FILE,ttl=5m
 *
 * jwt options: sign-method (required; RS256..RS512, PS256..PS512,
 * ES256..ES512, HS256..HS512), priv-key (a PEM private key, or for HS* the
 * shared secret's file), pub-key (a PEM public key; alone, the server only
 * verifies tokens), ttl (a Go duration, default 5m). Every mistake fails at
 * start with InvalidArgument naming it. Where etcd only warns (an unknown
 * option), starts and fails later (a key on the wrong curve), or ignores a
 * problem (a pub-key that is not the priv-key's), mergekv refuses to start.
 */
import { createPrivateKey, createPublicKey, createSecretKey, KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { isJwtSignMethod, JWT_SIGN_METHODS, JWT_TTL_MS, JwtSignMethod, JwtTokens } from "./jwt-tokens";
import { SimpleTokens } from "./simple-tokens";
import { authTokenOptionError, TokenProvider } from "./token-provider";
import { parseGoDuration } from "./go-duration";

/** The jwt options etcd 3.4 knows. */
const JWT_OPTIONS = ["sign-method", "priv-key", "pub-key", "ttl"];
/** Options a --auth-token value may carry: more is a mistake, not a configuration. */
const OPTIONS_MAX = JWT_OPTIONS.length;

export type AuthTokenSpec =
  | { kind: "simple" }
  | { kind: "jwt"; signMethod: JwtSignMethod; privKeyFile?: string; pubKeyFile?: string; ttlMs: number };

export interface TokenProviderOptions {
  /** A simple token's life past its last use (etcd's --auth-token-ttl). */
  simpleTtlMs?: number;
  /** The clock, in ms. */
  now?: () => number;
}

/**
 * Parses a --auth-token value without reading any file: "simple", or "jwt"
 * and its comma-separated key=value options. Throws InvalidArgument
 * ("--auth-token: ...") naming what is wrong.
 */
export function parseAuthToken(value: string): AuthTokenSpec {
  const [kind, ...pairs] = value.split(",");
  if (pairs.length > OPTIONS_MAX) throw authTokenOptionError(`too many options (at most ${OPTIONS_MAX}): ${JSON.stringify(value)}`);
  const options = new Map<string, string>();
  for (const pair of pairs) {
    const kv = pair.split("=");
    if (kv.length !== 2 || kv[0] === "") throw authTokenOptionError(`option ${JSON.stringify(pair)} is not key=value`);
    if (options.has(kv[0])) throw authTokenOptionError(`option ${kv[0]} is given twice`);
    options.set(kv[0], kv[1]);
  }
  if (kind === "simple") {
    if (options.size > 0) throw authTokenOptionError(`simple takes no options, got ${JSON.stringify(pairs.join(","))}`);
    return { kind: "simple" };
  }
  if (kind !== "jwt") throw authTokenOptionError(`unknown token type ${JSON.stringify(kind)} (expected simple or jwt)`);
  for (const k of options.keys()) {
    if (!JWT_OPTIONS.includes(k)) throw authTokenOptionError(`unknown jwt option ${JSON.stringify(k)} (expected ${JWT_OPTIONS.join(", ")})`);
  }
  const method = options.get("sign-method") ?? "";
  if (!isJwtSignMethod(method)) {
    const got = method === "" ? "none was given" : `got ${JSON.stringify(method)}`;
    throw authTokenOptionError(`jwt needs sign-method, one of ${JWT_SIGN_METHODS.join(", ")}; ${got}`);
  }
  const ttl = options.get("ttl") ?? "";
  const ttlMs = ttl === "" ? JWT_TTL_MS : parseGoDuration(ttl);
  if (ttlMs === undefined || ttlMs <= 0) throw authTokenOptionError(`ttl must be a positive duration such as 5m, 90s or 1h30m, got ${JSON.stringify(ttl)}`);
  return { kind: "jwt", signMethod: method, privKeyFile: options.get("priv-key") || undefined, pubKeyFile: options.get("pub-key") || undefined, ttlMs };
}

/**
 * The provider a --auth-token value asks for, its key files read and
 * checked. Throws InvalidArgument ("--auth-token: ...") for a bad value,
 * an unreadable file, a file that is not a key of the right kind, or keys
 * that do not match.
 */
export function tokenProviderFor(value: string, o: TokenProviderOptions = {}): TokenProvider {
  const spec = parseAuthToken(value);
  if (spec.kind === "simple") return new SimpleTokens({ ttlMs: o.simpleTtlMs, now: o.now });
  const hmac = spec.signMethod.startsWith("HS");
  const { privKeyFile, pubKeyFile } = spec;
  return new JwtTokens({
    signMethod: spec.signMethod,
    signingKey: privKeyFile === undefined ? undefined : hmac ? secretKeyFrom("priv-key", privKeyFile) : privateKeyFrom(privKeyFile),
    // For HS* a pub-key is refused by JwtTokens, with the reason.
    publicKey: pubKeyFile === undefined ? undefined : hmac ? secretKeyFrom("pub-key", pubKeyFile) : publicKeyFrom(pubKeyFile),
    ttlMs: spec.ttlMs,
    now: o.now,
  });
}

function read(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw authTokenOptionError(`cannot read ${option} ${file}: ${(e as Error).message}`);
  }
}

function privateKeyFrom(file: string): KeyObject {
  const pem = read("priv-key", file);
  try {
    return createPrivateKey(pem);
  } catch (e) {
    throw authTokenOptionError(`priv-key ${file} is not a PEM private key (${(e as Error).message})`);
  }
}

function publicKeyFrom(file: string): KeyObject {
  const pem = read("pub-key", file);
  // node would derive the public key from a private one; etcd would refuse it, and a private key does not belong there.
  if (pem.includes("PRIVATE KEY")) throw authTokenOptionError(`pub-key ${file} holds a private key; give the public key`);
  try {
    return createPublicKey(pem);
  } catch (e) {
    throw authTokenOptionError(`pub-key ${file} is not a PEM public key (${(e as Error).message})`);
  }
}

/** HS*: the file's bytes, as they are, are the shared secret (as in etcd). */
function secretKeyFrom(option: string, file: string): KeyObject {
  return createSecretKey(read(option, file));
}
