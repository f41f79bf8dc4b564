/*
 * The JWT token provider on its own, with an injected clock: issue and
 * verify for every sign method (checked with node:crypto directly, and
 * against tokens the real etcd 3.4.23 issued), expiry, tampering, other
 * keys, forged headers and claims, verify-only mode, and keys that do not
 * suit the method.
 */
import { constants, createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, KeyObject, sign, verify } from "node:crypto";
import fc from "fast-check";
import { JWT_BYTES_MAX, JWT_SIGN_METHODS, JWT_TTL_MS, JwtSignMethod, JwtTokens } from "../../src/backend/jwt-tokens";
import { Clock, invalidArgumentMessage } from "../helpers/auth";
import { assertProperty } from "../helpers/random";

/** RSA keys are slow to make: one pair (and one stranger) for every RS and PS test. */
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const otherRsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = { "256": generateKeyPairSync("ec", { namedCurve: "P-256" }), "384": generateKeyPairSync("ec", { namedCurve: "P-384" }), "512": generateKeyPairSync("ec", { namedCurve: "P-521" }) };
const secret = createSecretKey(Buffer.from("a shared secret of some length"));

function keysFor(method: JwtSignMethod): { privateKey: KeyObject; publicKey?: KeyObject } {
  if (method.startsWith("HS")) return { privateKey: secret };
  if (method.startsWith("ES")) return ec[method.slice(2) as "256"];
  return rsa;
}

function provider(method: JwtSignMethod, clock: Clock, ttlMs?: number): JwtTokens {
  const k = keysFor(method);
  return new JwtTokens({ signMethod: method, signingKey: k.privateKey, publicKey: k.publicKey, ttlMs, now: clock.now });
}

const json = (segment: string): unknown => JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");

/** A token built here, independently of the provider: RS256 by default, with `rsa`'s key. */
function handMade(claims: object, header: object = { alg: "RS256", typ: "JWT" }, key: KeyObject = rsa.privateKey): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${sign("sha256", Buffer.from(input), key).toString("base64url")}`;
}

describe("issue and verify", () => {
  test.each(JWT_SIGN_METHODS)("%s: etcd's header and claims; node:crypto verifies the signature; identify gives the claims back", (method) => {
    const clock = new Clock();
    const jwt = provider(method, clock);
    const token = jwt.issue("alice", 7);
    const [header, claims, signature] = token.split(".");
    expect(json(header)).toEqual({ alg: method, typ: "JWT" });
    expect(Buffer.from(claims, "base64url").toString()).toBe(`{"exp":${Math.floor((clock.ms + JWT_TTL_MS) / 1000)},"revision":7,"username":"alice"}`);
    const sig = Buffer.from(signature, "base64url");
    const input = Buffer.from(`${header}.${claims}`);
    const hash = `sha${method.slice(2)}`;
    if (method.startsWith("ES")) {
      // JOSE's r||s: twice the curve's size in bytes (P-521: 66), not DER.
      expect(sig.length).toBe({ "256": 64, "384": 96, "512": 132 }[method.slice(2)]);
      expect(verify(hash, input, { key: keysFor(method).publicKey!, dsaEncoding: "ieee-p1363" }, sig)).toBe(true);
    } else if (method.startsWith("PS")) {
      expect(verify(hash, input, { key: rsa.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(method.slice(2)) / 8 }, sig)).toBe(true);
      expect(verify(hash, input, rsa.publicKey, sig)).toBe(false); // not PKCS#1 v1.5
    } else if (method.startsWith("RS")) {
      expect(verify(hash, input, rsa.publicKey, sig)).toBe(true);
    } else {
      expect(sig.length).toBe(Number(method.slice(2)) / 8);
    }
    expect(jwt.identify(token)).toEqual({ user: "alice", revision: 7 });
    expect(jwt.identify(provider(method, clock).issue("bob", 0))).toEqual({ user: "bob", revision: 0 });
  });

  test("a user name is carried as it is, whatever its characters", () => {
    const jwt = provider("ES256", new Clock());
    for (const name of ["root", "ünïcødé", "with.dots,commas=and \"quotes\"", "x".repeat(1000)]) {
      expect(jwt.identify(jwt.issue(name, 3))).toEqual({ user: name, revision: 3 });
    }
  });
});

describe("tokens issued by the real etcd 3.4.23 (its keys' public halves; the clock set before their exp)", () => {
  const ES256_PUB = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHq21tRcPYn4uu7QuMGxq5TXeTTOF\nkw+r4i7SThYNo3ETUPryUScaelmRVxTlgBHAVjrt/ZX3TyCSOYK8UFoKHw==\n-----END PUBLIC KEY-----\n";
  const RSA_PUB = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEArNBHzBIvroAf2cSxKNLm\nYgs+0Pmi5RKLM+JOw0MSDHvuK8VP8BZ8OntcgUdl41VhfkfbjzZRI84ZPTUsE+gd\n6UK9pNNOiEA29YuvJPZq9mIVsFVSxPdEH6qbytG8GzJvXUQPNx5Kk5e7tSb/MDGD\nPnQpcr/iGXOIo4yhQPIY7UBDI4UyVw7ltBnHB49ZW3SSeHp9xoywLdU//Gj5UxTE\nkhYI1j3JBbBwpUu9kajehRp7iozf12BwJEHi6ko9740XO1sTh7sn+jL0uIKMEoEC\nfbCIdFZjdSdkX2YA24IHkcBfMDqSr88pFNbVCaLF0iWYpB9l6b2ArpP1NHlgxFoO\nqwIDAQAB\n-----END PUBLIC KEY-----\n";
  const cases: { method: JwtSignMethod; exp: number; token: string; key: () => { signingKey?: KeyObject; publicKey?: KeyObject } }[] = [
    {
      method: "ES256",
      exp: 1795324441,
      token: "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTUzMjQ0NDEsInJldmlzaW9uIjo0LCJ1c2VybmFtZSI6InJvb3QifQ.TU-pm7tgWKKsEHWjdpcYhiBPURvzLCCuVYdgOjI3a3skzq73Qh5NkebEe6mIpZ5vSQHiTkdPLfh5LRrtgo0c6w",
      key: () => ({ publicKey: createPublicKey(ES256_PUB) }),
    },
    {
      method: "PS256",
      exp: 1795324445,
      token: "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTUzMjQ0NDUsInJldmlzaW9uIjo0LCJ1c2VybmFtZSI6InJvb3QifQ.ZTrm74WSMLsr9JGc5e06gilf1CfWSjOigfmByJXG8BAxD-mRXtALKzB28z5__759wErYYOQ-k6asXD0pqa4wpLUcRN4x_fH_wDnuofGw1DZbYQc7-C9VBTUJmAqYGAOYzmowH34nF1DjuxoPGEceTLua7_u5zy4JEtBvFFfPLhudRHAs7NN3mPQ5uRAL-0ePUVYunsvJ9gEdUW4WWR3FMvKOBb7hQFmd-WaNbL2KLlBURmMw1Zd9JdOzWPaZpUgdTx1nTWTevPg06j44D_RFtvofRxJkyHEVKXmcm_Bg3jSfPuno1fQOWODGbZaSqn2gnebyf1-dgi6meTfSTUXibw",
      key: () => ({ publicKey: createPublicKey(RSA_PUB) }),
    },
    {
      method: "HS256",
      exp: 1795324448,
      token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTUzMjQ0NDgsInJldmlzaW9uIjo0LCJ1c2VybmFtZSI6InJvb3QifQ.6-J6bEHdlVlemT7-q_yLg2DVWByW3VxXOH-nXBRJem8",
      key: () => ({ signingKey: createSecretKey(Buffer.from("mergekv-test-hmac-secret")) }),
    },
  ];

  test.each(cases)("$method: accepted until its exp, refused after; refused by a provider of another method", ({ method, exp, token, key }) => {
    const clock = new Clock();
    const jwt = new JwtTokens({ signMethod: method, ...key(), now: clock.now });
    clock.ms = (exp - 300) * 1000; // etcd issued it with the default ttl of 5 minutes
    expect(jwt.identify(token)).toEqual({ user: "root", revision: 4 });
    clock.ms = exp * 1000 + 999;
    expect(jwt.identify(token)).toEqual({ user: "root", revision: 4 });
    clock.ms = (exp + 1) * 1000;
    expect(jwt.identify(token)).toBeUndefined();
    clock.ms = (exp - 300) * 1000;
    expect(provider(method === "ES256" ? "ES384" : "RS256", clock).identify(token)).toBeUndefined();
  });
});

describe("expiry", () => {
  test("valid through the second of exp (issue time + ttl, default 5 minutes), invalid from the next", () => {
    const clock = new Clock();
    clock.ms = 1_700_000_000_000;
    const jwt = provider("RS256", clock);
    const token = jwt.issue("alice", 1);
    clock.ms += JWT_TTL_MS - 1_000;
    expect(jwt.identify(token)).toEqual({ user: "alice", revision: 1 });
    clock.ms += 1_999;
    expect(jwt.identify(token)).toEqual({ user: "alice", revision: 1 }); // use does not extend it, but the second of exp still counts
    clock.ms += 1;
    expect(jwt.identify(token)).toBeUndefined();
  });

  test("a shorter ttl; and a token with exp already passed is refused at once", () => {
    const clock = new Clock();
    clock.ms = 1_700_000_000_000;
    const jwt = provider("ES256", clock, 10_000);
    const token = jwt.issue("alice", 1);
    expect(JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp).toBe(1_700_000_010);
    clock.ms += 11_000;
    expect(jwt.identify(token)).toBeUndefined();
    const rs = provider("RS256", clock);
    const nowSeconds = Math.floor(clock.ms / 1000);
    expect(rs.identify(handMade({ exp: nowSeconds - 1, revision: 1, username: "alice" }))).toBeUndefined();
    expect(rs.identify(handMade({ exp: nowSeconds, revision: 1, username: "alice" }))).toEqual({ user: "alice", revision: 1 });
  });
});

describe("forged, tampered and foreign tokens are refused", () => {
  const clock = new Clock();
  const jwt = provider("RS256", clock);
  const token = jwt.issue("alice", 5);
  const [header, claims, signature] = token.split(".");

  test("a changed signature, claims or header; the signature of another token", () => {
    const flipped = signature.slice(0, 10) + (signature[10] === "A" ? "B" : "A") + signature.slice(11);
    expect(jwt.identify(`${header}.${claims}.${flipped}`)).toBeUndefined();
    expect(jwt.identify(`${header}.${b64({ exp: 9_999_999_999, revision: 5, username: "root" })}.${signature}`)).toBeUndefined();
    expect(jwt.identify(`${b64({ alg: "RS256" })}.${claims}.${signature}`)).toBeUndefined();
    const other = jwt.issue("root", 5).split(".")[2];
    expect(jwt.identify(`${header}.${claims}.${other}`)).toBeUndefined();
    expect(jwt.identify(token)).toEqual({ user: "alice", revision: 5 }); // the original still is valid
  });

  test("any one character changed, added or removed: refused", () => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    assertProperty("jwt: one-character edits of a valid token", fc.property(
      fc.nat({ max: token.length }), fc.constantFrom(...alphabet), fc.constantFrom("replace", "insert", "delete"),
      (at, c, edit) => {
        const i = Math.min(at, token.length - 1);
        const edited = edit === "replace" ? token.slice(0, i) + c + token.slice(i + 1) : edit === "insert" ? token.slice(0, at) + c + token.slice(at) : token.slice(0, i) + token.slice(i + 1);
        fc.pre(edited !== token);
        expect(jwt.identify(edited)).toBeUndefined();
      }), { numRuns: 300 });
  });

  test("the signature written another way (spare bits of its last character set): refused, one encoding only", () => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // 256 signature bytes end in a group of one byte: 8 bits in two characters, the last one's 4 low bits spare.
    const last = alphabet.indexOf(signature[signature.length - 1]);
    const variant = signature.slice(0, -1) + alphabet[(last & 0b110000) | ((last + 1) & 0b1111)];
    expect(Buffer.from(variant, "base64url").equals(Buffer.from(signature, "base64url"))).toBe(true);
    expect(jwt.identify(`${header}.${claims}.${variant}`)).toBeUndefined();
  });

  test("signed by another key of the same kind", () => {
    const stranger = new JwtTokens({ signMethod: "RS256", signingKey: otherRsa.privateKey, now: clock.now });
    expect(jwt.identify(stranger.issue("alice", 5))).toBeUndefined();
    const es = provider("ES256", clock);
    const otherEs = new JwtTokens({ signMethod: "ES256", signingKey: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, now: clock.now });
    expect(es.identify(otherEs.issue("alice", 5))).toBeUndefined();
    expect(provider("HS256", clock).identify(new JwtTokens({ signMethod: "HS256", signingKey: createSecretKey(Buffer.from("another secret")), now: clock.now }).issue("alice", 5))).toBeUndefined();
  });

  test("another alg in the header: alg none, and HS256 keyed with our public key (alg confusion)", () => {
    expect(jwt.identify(`${b64({ alg: "none", typ: "JWT" })}.${claims}.`)).toBeUndefined();
    expect(jwt.identify(`${b64({ alg: "none", typ: "JWT" })}.${claims}.${signature}`)).toBeUndefined();
    const pem = rsa.publicKey.export({ type: "spki", format: "pem" }) as string;
    const confused = new JwtTokens({ signMethod: "HS256", signingKey: createSecretKey(Buffer.from(pem)), now: clock.now }).issue("root", 5);
    expect(jwt.identify(confused)).toBeUndefined();
    // The same claims under RS384 with our key: a valid signature, but not the configured method.
    expect(jwt.identify(handMade({ exp: 9_999_999_999, revision: 5, username: "alice" }, { alg: "RS384", typ: "JWT" }))).toBeUndefined();
  });

  test("claims etcd's tokens must have: a user name and a revision; exp and nbf numbers when present", () => {
    const ok = { exp: 9_999_999_999, revision: 5, username: "alice" };
    expect(jwt.identify(handMade(ok))).toEqual({ user: "alice", revision: 5 });
    expect(jwt.identify(handMade({ revision: 5, username: "alice" }))).toEqual({ user: "alice", revision: 5 }); // no exp: as etcd's library, valid
    for (const bad of [
      { exp: ok.exp, revision: 5 },
      { ...ok, username: "" },
      { ...ok, username: 7 },
      { exp: ok.exp, username: "alice" },
      { ...ok, revision: "5" },
      { ...ok, revision: -1 },
      { ...ok, revision: 1.5 },
      { ...ok, exp: "9999999999" },
      { ...ok, nbf: Math.floor(clock.ms / 1000) + 60 },
    ]) {
      expect([bad, jwt.identify(handMade(bad))]).toEqual([bad, undefined]);
    }
    expect(jwt.identify(handMade({ ...ok, nbf: Math.floor(clock.ms / 1000) }))).toEqual({ user: "alice", revision: 5 });
  });

  test("malformed: not three base64url segments, not JSON, or too long", () => {
    for (const bad of ["", "abc", "a.b", "a.b.c.d", `${header}.${claims}`, `${header}..${signature}`, `${header}.${claims}.${signature}=`, "e30.e30.e30", `${b64("x")}.${claims}.${signature}`]) {
      expect([bad, jwt.identify(bad)]).toEqual([bad, undefined]);
    }
    expect(jwt.identify(handMade({ exp: 9_999_999_999, revision: 5, username: "a".repeat(JWT_BYTES_MAX) }))).toBeUndefined();
  });
});

describe("verify-only (pub-key without priv-key)", () => {
  test("verifies tokens the private key signed; issuing throws AuthVerifyOnly", () => {
    const clock = new Clock();
    const verifier = new JwtTokens({ signMethod: "ES384", publicKey: ec["384"].publicKey, now: clock.now });
    expect(verifier.identify(provider("ES384", clock).issue("alice", 2))).toEqual({ user: "alice", revision: 2 });
    expect(() => verifier.issue("alice", 2)).toThrow(expect.objectContaining({ code: "AuthVerifyOnly", message: "auth: token signing attempted with verify-only key" }));
  });
});

describe("keys that do not suit the method are refused with a clear message", () => {
  test.each([
    ["RS256", "--auth-token: sign-method RS256 needs an RSA key; priv-key is an EC key on prime256v1", { signingKey: ec["256"].privateKey }],
    ["PS512", "--auth-token: sign-method PS512 needs an RSA key; pub-key is an EC key on prime256v1", { publicKey: ec["256"].publicKey }],
    ["ES384", "--auth-token: sign-method ES384 needs an EC key on P-384 (secp384r1); priv-key is an EC key on prime256v1", { signingKey: ec["256"].privateKey }],
    ["ES256", "--auth-token: sign-method ES256 needs an EC key on P-256 (prime256v1); priv-key is a key of type rsa", { signingKey: rsa.privateKey }],
    ["RS256", "--auth-token: pub-key does not match priv-key (it is not that private key's public key)", { signingKey: rsa.privateKey, publicKey: otherRsa.publicKey }],
    ["RS256", "--auth-token: jwt needs priv-key (to sign and verify tokens) or pub-key (to verify only)", {}],
    ["RS256", "--auth-token: priv-key must be a private key, got a public key", { signingKey: rsa.publicKey }],
    ["RS256", "--auth-token: priv-key must be a private key, got a secret key", { signingKey: secret }],
    ["HS256", "--auth-token: sign-method HS256 signs and verifies with the shared secret in priv-key; pub-key does not apply", { signingKey: secret, publicKey: rsa.publicKey }],
    ["HS384", "--auth-token: sign-method HS384 needs priv-key: a file holding the shared secret", { signingKey: rsa.privateKey }],
    ["HS512", "--auth-token: sign-method HS512: the shared secret in priv-key is empty", { signingKey: createSecretKey(Buffer.alloc(0)) }],
  ] as [JwtSignMethod, string, { signingKey?: KeyObject; publicKey?: KeyObject }][])("%s: %s", (method, message, keys) => {
    expect(invalidArgumentMessage(() => new JwtTokens({ signMethod: method, ...keys }))).toBe(message);
  });

  test("an unknown method or a ttl that is not positive", () => {
    expect(invalidArgumentMessage(() => new JwtTokens({ signMethod: "XX256" as JwtSignMethod, signingKey: rsa.privateKey }))).toBe('--auth-token: unsupported sign-method "XX256"');
    expect(invalidArgumentMessage(() => new JwtTokens({ signMethod: "RS256", signingKey: rsa.privateKey, ttlMs: 0 }))).toBe("--auth-token: ttl must be a positive duration, got 0 ms");
  });

  test("matching keys given both ways are accepted, from PKCS#1 and PKCS#8 PEMs alike", () => {
    const pkcs1 = createPrivateKey(rsa.privateKey.export({ type: "pkcs1", format: "pem" }));
    const jwt = new JwtTokens({ signMethod: "RS512", signingKey: pkcs1, publicKey: createPublicKey(rsa.publicKey.export({ type: "pkcs1", format: "pem" })) });
    expect(jwt.identify(jwt.issue("alice", 1))).toEqual({ user: "alice", revision: 1 });
  });
});
