/**
 * etcd's JWT tokens ("--auth-token jwt,..."): a token is a JWS in compact
 * form, header {"alg":METHOD,"typ":"JWT"}, claims {"exp","revision",
 * "username"} as etcd 3.4 writes them, signed with the private key (or, for
 * HS*, the shared secret). A token is valid while its signature verifies,
 * its "alg" is the configured method and "exp" has not passed. Nothing is
 * held in memory, so tokens stay valid across restarts, and tokens issued by
 * etcd with the same keys are accepted (and the other way round).
 *
 * Signatures use node:crypto only: RS* are RSASSA-PKCS1-v1_5, PS* RSASSA-PSS
 * (salt as long as the hash when signing; any salt length verifies, as in
 * etcd), ES* ECDSA with the JOSE r||s encoding ("ieee-p1363"), HS* HMAC.
 */
import { constants, createHmac, createPublicKey, KeyObject, sign, timingSafeEqual, verify } from "node:crypto";
import { MergekvError } from "../errors";
import { authTokenOptionError, TokenClaims, TokenProvider } from "./token-provider";

export const JWT_SIGN_METHODS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512"] as const;
export type JwtSignMethod = (typeof JWT_SIGN_METHODS)[number];

/** etcd's default for the jwt option ttl: a token is valid 5 minutes after it is issued. */
export const JWT_TTL_MS = 5 * 60_000;
/** Longer tokens are refused unread: bounds the work a forged token can cause (gRPC metadata is at most 8 KiB anyway). */
export const JWT_BYTES_MAX = 8 * 1024;

type Family = "RS" | "PS" | "ES" | "HS";
interface Algorithm {
  family: Family;
  hash: "sha256" | "sha384" | "sha512";
  /** ES* only: the curve the key must be on, as node names it and as JOSE does. */
  curve?: { node: string; jose: string };
}

/** ES256/384/512: the curve each needs (JWA, RFC 7518 3.4), as node and as JOSE name it. */
const CURVES = {
  "256": { node: "prime256v1", jose: "P-256" },
  "384": { node: "secp384r1", jose: "P-384" },
  "512": { node: "secp521r1", jose: "P-521" },
};
/** One compact-JWS segment: base64url without padding. */
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Whether `s` names a sign method mergekv (and etcd 3.4) supports, spelled exactly (upper case). */
export function isJwtSignMethod(s: string): s is JwtSignMethod {
  return (JWT_SIGN_METHODS as readonly string[]).includes(s);
}

function algorithmOf(method: JwtSignMethod): Algorithm {
  const family = method.slice(0, 2) as Family;
  const bits = method.slice(2) as keyof typeof CURVES;
  return { family, hash: `sha${bits}`, curve: family === "ES" ? CURVES[bits] : undefined };
}

export interface JwtOptions {
  signMethod: JwtSignMethod;
  /**
   * Signs tokens: an RSA or EC private key, or for HS* the shared secret (a
   * secret KeyObject). Without it the provider only verifies (etcd's
   * verify-only mode): Authenticate then fails with AuthVerifyOnly.
   */
  signingKey?: KeyObject;
  /** Verifies tokens: an RSA or EC public key matching `signingKey`; derived from it when absent. Not for HS*. */
  publicKey?: KeyObject;
  /** How long an issued token is valid (default JWT_TTL_MS). */
  ttlMs?: number;
  /** The clock, in ms (tests move it by hand). */
  now?: () => number;
}

export class JwtTokens implements TokenProvider {
  readonly kind = "jwt";
  readonly signMethod: JwtSignMethod;
  readonly ttlMs: number;
  private readonly alg: Algorithm;
  private readonly signingKey: KeyObject | undefined;
  private readonly verifyingKey: KeyObject;
  private readonly now: () => number;

  /** Throws InvalidArgument ("--auth-token: ...") when the keys do not suit the method or each other. */
  constructor(o: JwtOptions) {
    if (!isJwtSignMethod(o.signMethod)) throw authTokenOptionError(`unsupported sign-method ${JSON.stringify(o.signMethod)}`);
    this.signMethod = o.signMethod;
    this.alg = algorithmOf(o.signMethod);
    this.ttlMs = o.ttlMs ?? JWT_TTL_MS;
    if (!Number.isFinite(this.ttlMs) || this.ttlMs <= 0) throw authTokenOptionError(`ttl must be a positive duration, got ${this.ttlMs} ms`);
    this.now = o.now ?? Date.now;
    this.verifyingKey = checkKeys(this.signMethod, this.alg, o.signingKey, o.publicKey);
    this.signingKey = o.signingKey;
  }

  /** A signed token valid for `ttlMs`; throws AuthVerifyOnly when no signing key was given. */
  issue(user: string, revision: number): string {
    if (!this.signingKey) throw new MergekvError("AuthVerifyOnly");
    const header = segment({ alg: this.signMethod, typ: "JWT" });
    const claims = segment({ exp: Math.floor((this.now() + this.ttlMs) / 1000), revision, username: user });
    const input = `${header}.${claims}`;
    return `${input}.${this.sign(Buffer.from(input)).toString("base64url")}`;
  }

  /** The claims, if the token is well formed, of this method, signed by our key and not expired. */
  identify(token: string): TokenClaims | undefined {
    if (token.length > JWT_BYTES_MAX) return undefined;
    const parts = token.split(".");
    if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) return undefined;
    // Only the configured method: also what stops "alg confusion" (an HS256 token keyed with our public key).
    if (decode(parts[0])?.alg !== this.signMethod) return undefined;
    const signature = Buffer.from(parts[2], "base64url");
    if (signature.toString("base64url") !== parts[2]) return undefined; // one encoding only: no spare bits set in the last character
    if (!this.verify(Buffer.from(`${parts[0]}.${parts[1]}`), signature)) return undefined;
    return claimsOf(decode(parts[1]), Math.floor(this.now() / 1000));
  }

  forget(): void {} // stateless: the AuthStore voids tokens by revision
  clear(): void {}

  private sign(input: Buffer): Buffer {
    const key = this.signingKey!;
    if (this.alg.family === "HS") return createHmac(this.alg.hash, key).update(input).digest();
    return sign(this.alg.hash, input, { key, ...paddingOf(this.alg.family, "sign") });
  }

  private verify(input: Buffer, signature: Buffer): boolean {
    if (this.alg.family === "HS") {
      const expected = createHmac(this.alg.hash, this.verifyingKey).update(input).digest();
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    }
    try {
      return verify(this.alg.hash, input, { key: this.verifyingKey, ...paddingOf(this.alg.family, "verify") }, signature);
    } catch {
      return false; // e.g. an ECDSA signature of the wrong length
    }
  }
}

/** The key that verifies: checks each key suits the method and that the two match. Throws InvalidArgument. */
function checkKeys(method: JwtSignMethod, alg: Algorithm, signingKey?: KeyObject, publicKey?: KeyObject): KeyObject {
  if (alg.family === "HS") {
    if (publicKey) throw authTokenOptionError(`sign-method ${method} signs and verifies with the shared secret in priv-key; pub-key does not apply`);
    if (!signingKey || signingKey.type !== "secret") throw authTokenOptionError(`sign-method ${method} needs priv-key: a file holding the shared secret`);
    if (signingKey.symmetricKeySize === 0) throw authTokenOptionError(`sign-method ${method}: the shared secret in priv-key is empty`);
    return signingKey;
  }
  if (!signingKey && !publicKey) throw authTokenOptionError("jwt needs priv-key (to sign and verify tokens) or pub-key (to verify only)");
  if (signingKey) checkAsymmetric(method, alg, signingKey, "private", "priv-key");
  if (publicKey) checkAsymmetric(method, alg, publicKey, "public", "pub-key");
  const derived = signingKey && createPublicKey(signingKey);
  if (derived && publicKey && !derived.export({ type: "spki", format: "der" }).equals(publicKey.export({ type: "spki", format: "der" }))) {
    throw authTokenOptionError("pub-key does not match priv-key (it is not that private key's public key)");
  }
  return publicKey ?? derived!;
}

function checkAsymmetric(method: JwtSignMethod, alg: Algorithm, key: KeyObject, type: "private" | "public", option: string): void {
  if (key.type !== type) throw authTokenOptionError(`${option} must be a ${type} key, got a ${key.type} key`);
  const kind = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const what = kind === "ec" ? `an EC key on ${curve}` : `a key of type ${kind}`;
  if (alg.curve && (kind !== "ec" || curve !== alg.curve.node)) {
    throw authTokenOptionError(`sign-method ${method} needs an EC key on ${alg.curve.jose} (${alg.curve.node}); ${option} is ${what}`);
  }
  if (!alg.curve && kind !== "rsa") throw authTokenOptionError(`sign-method ${method} needs an RSA key; ${option} is ${what}`);
}

function paddingOf(family: Family, use: "sign" | "verify"): { padding?: number; saltLength?: number; dsaEncoding?: "ieee-p1363" } {
  if (family === "RS") return { padding: constants.RSA_PKCS1_PADDING };
  if (family === "PS") return { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: use === "sign" ? constants.RSA_PSS_SALTLEN_DIGEST : constants.RSA_PSS_SALTLEN_AUTO };
  return { dsaEncoding: "ieee-p1363" }; // JOSE's r||s, not DER
}

function segment(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

function decode(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * etcd's claims, checked as its JWT library does: "username" a non-empty
 * string, "revision" a non-negative integer; "exp" (seconds), if present,
 * not before now; "nbf", if present, not after now.
 */
function claimsOf(c: Record<string, unknown> | undefined, nowSeconds: number): TokenClaims | undefined {
  if (!c) return undefined;
  const { username, revision, exp, nbf } = c;
  if (typeof username !== "string" || username === "") return undefined;
  if (typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 0) return undefined;
  if (exp !== undefined && (typeof exp !== "number" || nowSeconds > exp)) return undefined;
  if (nbf !== undefined && (typeof nbf !== "number" || nowSeconds < nbf)) return undefined;
  return { user: username, revision };
}
