/*
 * The --auth-token flag: parsing etcd 3.4's option syntax, Go durations for
 * ttl, and building the provider from key files written here (PEM in every
 * form node writes), with the specific error each mistake gives.
 */
import { generateKeyPairSync } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { JwtTokens } from "../../src/backend/jwt-tokens";
import { SimpleTokens } from "../../src/backend/simple-tokens";
import { parseAuthToken, tokenProviderFor } from "../../src/backend/token-options";
import { parseGoDuration } from "../../src/backend/go-duration";
import { Clock, invalidArgumentMessage } from "../helpers/auth";
import { tempDir } from "../helpers/server";

describe("parseAuthToken", () => {
  test("simple; jwt with its options in any order; ttl defaults to 5m; empty file options count as absent", () => {
    expect(parseAuthToken("simple")).toEqual({ kind: "simple" });
    expect(parseAuthToken("jwt,pub-key=/k/pub.pem,priv-key=/k/priv.pem,sign-method=RS256,ttl=10m")).toEqual({
      kind: "jwt", signMethod: "RS256", pubKeyFile: "/k/pub.pem", privKeyFile: "/k/priv.pem", ttlMs: 600_000,
    });
    expect(parseAuthToken("jwt,sign-method=ES384,priv-key=k.pem")).toEqual({ kind: "jwt", signMethod: "ES384", privKeyFile: "k.pem", pubKeyFile: undefined, ttlMs: 300_000 });
    expect(parseAuthToken("jwt,sign-method=PS512,pub-key=p.pem,priv-key=,ttl=")).toEqual({ kind: "jwt", signMethod: "PS512", privKeyFile: undefined, pubKeyFile: "p.pem", ttlMs: 300_000 });
  });

  test.each([
    ["bogus", '--auth-token: unknown token type "bogus" (expected simple or jwt)'],
    ["", '--auth-token: unknown token type "" (expected simple or jwt)'],
    ["JWT,sign-method=RS256", '--auth-token: unknown token type "JWT" (expected simple or jwt)'],
    ["simple,foo=bar", '--auth-token: simple takes no options, got "foo=bar"'],
    ["jwt", "--auth-token: jwt needs sign-method, one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, HS256, HS384, HS512; none was given"],
    ["jwt,priv-key=k.pem,sign-method=rs256", '--auth-token: jwt needs sign-method, one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, HS256, HS384, HS512; got "rs256"'],
    ["jwt,foo", '--auth-token: option "foo" is not key=value'],
    ["jwt,priv-key=a=b,sign-method=RS256", '--auth-token: option "priv-key=a=b" is not key=value'],
    ["jwt,=x,sign-method=RS256", '--auth-token: option "=x" is not key=value'],
    ["jwt,sign-method=RS256,sign-method=RS384", "--auth-token: option sign-method is given twice"],
    ["jwt,sign-method=RS256,priv-key=k,tll=3m", '--auth-token: unknown jwt option "tll" (expected sign-method, priv-key, pub-key, ttl)'],
    ["jwt,sign-method=RS256,priv-key=k,ttl=abc", '--auth-token: ttl must be a positive duration such as 5m, 90s or 1h30m, got "abc"'],
    ["jwt,sign-method=RS256,priv-key=k,ttl=300", '--auth-token: ttl must be a positive duration such as 5m, 90s or 1h30m, got "300"'],
    ["jwt,sign-method=RS256,priv-key=k,ttl=0", '--auth-token: ttl must be a positive duration such as 5m, 90s or 1h30m, got "0"'],
    ["jwt,sign-method=RS256,priv-key=k,ttl=-5m", '--auth-token: ttl must be a positive duration such as 5m, 90s or 1h30m, got "-5m"'],
    ["jwt,a=1,b=2,c=3,d=4,e=5", '--auth-token: too many options (at most 4): "jwt,a=1,b=2,c=3,d=4,e=5"'],
  ])("%j: %s", (value, message) => {
    expect(invalidArgumentMessage(() => parseAuthToken(value))).toBe(message);
  });
});

describe("parseGoDuration", () => {
  test.each([
    ["5m", 300_000], ["1h30m", 5_400_000], ["1.5s", 1_500], ["300ms", 300], ["2h45m30.5s", 9_930_500], ["0", 0], ["-5m", -300_000], ["+10s", 10_000], [".5h", 1_800_000], ["1500us", 1.5], ["1µs", 0.001],
  ])("%s is %d ms", (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms);
  });

  test.each(["", "5", "m", "5 m", "5M", "5d", "1h 30m", "--5m", "5m,", "ms", "1.2.3s"])("%j is not a duration", (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });
});

describe("tokenProviderFor: key files", () => {
  let dir: string;
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const file = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    dir = await tempDir("mergekv-jwt-keys-");
    const write = (name: string, data: string | Buffer) => fs.writeFile(file(name), data);
    await write("rsa-pkcs8.pem", rsa.privateKey.export({ type: "pkcs8", format: "pem" }));
    await write("rsa-pkcs1.pem", rsa.privateKey.export({ type: "pkcs1", format: "pem" }));
    await write("rsa-pub.pem", rsa.publicKey.export({ type: "spki", format: "pem" }));
    await write("rsa-pub-pkcs1.pem", rsa.publicKey.export({ type: "pkcs1", format: "pem" }));
    await write("ec-sec1.pem", ec.privateKey.export({ type: "sec1", format: "pem" }));
    await write("ec-pub.pem", ec.publicKey.export({ type: "spki", format: "pem" }));
    await write("secret", "a shared secret\n");
    await write("garbage.pem", "not a key\n");
  });

  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test("simple (the default kind), with --auth-token-ttl and the clock", () => {
    const clock = new Clock();
    const simple = tokenProviderFor("simple", { simpleTtlMs: 10_000, now: clock.now });
    expect(simple).toBeInstanceOf(SimpleTokens);
    const token = simple.issue("alice", 3);
    clock.ms += 9_999;
    expect(simple.identify(token)).toEqual({ user: "alice", revision: 3 });
    clock.ms += 10_000;
    expect(simple.identify(token)).toBeUndefined();
  });

  test.each([
    ["RS256", "rsa-pkcs8.pem", "rsa-pub.pem"],
    ["PS384", "rsa-pkcs1.pem", "rsa-pub-pkcs1.pem"],
    ["ES256", "ec-sec1.pem", "ec-pub.pem"],
    ["ES256", "ec-sec1.pem", undefined],
  ])("%s from %s and %s: the tokens round-trip, and a verify-only provider from the public key accepts them", (method, priv, pub) => {
    const clock = new Clock();
    const jwt = tokenProviderFor(`jwt,sign-method=${method},priv-key=${file(priv)}${pub ? `,pub-key=${file(pub)}` : ""},ttl=1m`, { now: clock.now });
    expect(jwt).toBeInstanceOf(JwtTokens);
    expect((jwt as JwtTokens).ttlMs).toBe(60_000);
    const token = jwt.issue("alice", 9);
    expect(jwt.identify(token)).toEqual({ user: "alice", revision: 9 });
    const verifier = tokenProviderFor(`jwt,sign-method=${method},pub-key=${file(pub ?? "ec-pub.pem")}`, { now: clock.now });
    expect(verifier.identify(token)).toEqual({ user: "alice", revision: 9 });
    expect(() => verifier.issue("alice", 9)).toThrow("auth: token signing attempted with verify-only key");
  });

  test("HS256: the file's bytes, newline and all, are the secret", () => {
    const jwt = tokenProviderFor(`jwt,sign-method=HS256,priv-key=${file("secret")}`);
    const other = tokenProviderFor(`jwt,sign-method=HS256,priv-key=${file("garbage.pem")}`);
    const token = jwt.issue("alice", 1);
    expect(jwt.identify(token)).toEqual({ user: "alice", revision: 1 });
    expect(other.identify(token)).toBeUndefined();
  });

  test("each mistake names the option and the file", () => {
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=RS256,priv-key=${file("missing.pem")}`)))
      .toBe(`--auth-token: cannot read priv-key ${file("missing.pem")}: ENOENT: no such file or directory, open '${file("missing.pem")}'`);
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=RS256,pub-key=${file("missing.pem")}`))).toMatch(/^--auth-token: cannot read pub-key .*missing\.pem: ENOENT/);
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=RS256,priv-key=${file("garbage.pem")}`))).toMatch(/^--auth-token: priv-key .*garbage\.pem is not a PEM private key \(/);
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=RS256,priv-key=${file("rsa-pub.pem")}`))).toMatch(/^--auth-token: priv-key .*rsa-pub\.pem is not a PEM private key \(/);
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=RS256,pub-key=${file("garbage.pem")}`))).toMatch(/^--auth-token: pub-key .*garbage\.pem is not a PEM public key \(/);
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=RS256,pub-key=${file("rsa-pkcs8.pem")}`))).toBe(`--auth-token: pub-key ${file("rsa-pkcs8.pem")} holds a private key; give the public key`);
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=RS256,priv-key=${file("ec-sec1.pem")}`))).toBe("--auth-token: sign-method RS256 needs an RSA key; priv-key is an EC key on prime256v1");
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=ES512,priv-key=${file("ec-sec1.pem")}`))).toBe("--auth-token: sign-method ES512 needs an EC key on P-521 (secp521r1); priv-key is an EC key on prime256v1");
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=RS256,priv-key=${file("rsa-pkcs8.pem")},pub-key=${file("ec-pub.pem")}`))).toBe("--auth-token: sign-method RS256 needs an RSA key; pub-key is an EC key on prime256v1");
    expect(invalidArgumentMessage(() => tokenProviderFor(`jwt,sign-method=HS256,priv-key=${file("secret")},pub-key=${file("rsa-pub.pem")}`)))
      .toBe("--auth-token: sign-method HS256 signs and verifies with the shared secret in priv-key; pub-key does not apply");
    expect(invalidArgumentMessage(() => tokenProviderFor("jwt,sign-method=ES256"))).toBe("--auth-token: jwt needs priv-key (to sign and verify tokens) or pub-key (to verify only)");
  });
});
