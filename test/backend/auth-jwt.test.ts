/*
 * The AuthStore handing out JWTs (over a ChangeLog on a MemoryStore, with an
 * injected clock): tokens survive a reload of the store (a restart), expire
 * on the clock, and are voided, like simple tokens, by a new password,
 * deleting the user (even if the name is added again) and enabling auth
 * again; other auth changes leave them valid.
 */
import { generateKeyPairSync } from "node:crypto";
import { AuthStore, ROOT } from "../../src/backend/auth";
import { JWT_TTL_MS, JwtTokens } from "../../src/backend/jwt-tokens";
import { ChangeLog } from "../../src/persist/changelog";
import { authSubject, Clock, enableWithRoot, failure, sessionsEnd } from "../helpers/auth";

const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
const jwtOn = (clock: Clock) => new JwtTokens({ signMethod: "ES256", signingKey: keys.privateKey, now: clock.now });
const subject = () => authSubject(jwtOn);

describe("the AuthStore with JWTs", () => {
  test("Authenticate returns a JWT whose claims are the user and the auth revision; identify reads it back", async () => {
    const { auth } = await subject();
    await enableWithRoot(auth);
    await auth.userAdd("alice", "pw", false);
    const token = await auth.authenticate("alice", "pw");
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    expect([claims.username, claims.revision]).toEqual(["alice", auth.revision]);
    expect(auth.identify(token)).toBe("alice");
    expect(await failure(() => auth.authenticate("alice", "wrong"))).toBe("AuthFailed");
    expect(await failure(() => auth.identify(token.slice(0, -2)))).toBe("InvalidAuthToken");
    expect(await failure(() => auth.identify(undefined))).toBe("UserEmpty");
  });

  test("a token outlives a reload of the store (a restart) with the same keys; not one with other keys", async () => {
    const { auth, store, clock } = await subject();
    await enableWithRoot(auth);
    const token = await auth.authenticate(ROOT, "root-password");
    const again = await AuthStore.load(new ChangeLog(store, true), jwtOn(clock));
    expect(again.identify(token)).toBe(ROOT);
    const otherKeys = new JwtTokens({ signMethod: "ES256", signingKey: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, now: clock.now });
    const elsewhere = await AuthStore.load(new ChangeLog(store, true), otherKeys);
    expect(await failure(() => elsewhere.identify(token))).toBe("InvalidAuthToken");
  });

  test("expires ttl after it was issued, however often it is used", async () => {
    const { auth, clock } = await subject();
    await enableWithRoot(auth);
    const token = await auth.authenticate(ROOT, "root-password");
    clock.ms += JWT_TTL_MS / 2;
    expect(auth.identify(token)).toBe(ROOT);
    clock.ms += JWT_TTL_MS / 2 + 1_000;
    expect(await failure(() => auth.identify(token))).toBe("InvalidAuthToken");
  });

  test("a new password, deleting the user (and adding the name again), or enabling auth again voids it", async () => {
    await sessionsEnd((await subject()).auth);
  });

  test("other auth changes (roles, permissions, other users) leave it valid; permissions are always the current ones", async () => {
    const { auth } = await subject();
    await enableWithRoot(auth);
    await auth.userAdd("alice", "pw", false);
    await auth.roleAdd("app");
    await auth.userGrantRole("alice", "app");
    const token = await auth.authenticate("alice", "pw");
    const need = [{ access: "read" as const, key: "app/x", rangeEnd: "" }];
    expect(await failure(() => auth.authorize(auth.identify(token), need))).toBe("PermissionDenied");
    await auth.roleGrantPermission("app", { permType: "Read", key: "app/", rangeEnd: "app0" });
    await auth.userAdd("carol", "pw", false);
    expect(auth.identify(token)).toBe("alice");
    expect(() => auth.authorize(auth.identify(token), need)).not.toThrow();
    await auth.userRevokeRole("alice", "app");
    expect(await failure(() => auth.authorize(auth.identify(token), need))).toBe("PermissionDenied");
  });

  test("a password changed while Authenticate checks the old one: the token it then issues is void", async () => {
    const { auth } = await subject();
    await enableWithRoot(auth);
    await auth.userAdd("alice", "old", false);
    // Both hash off the main thread; the change, started first, usually commits before Authenticate resumes.
    const changed = auth.userChangePassword("alice", "new");
    const racing = auth.authenticate("alice", "old"); // checked against the old password's hash
    await changed;
    expect(await failure(async () => auth.identify(await racing))).toBe("InvalidAuthToken");
  });

  test("verify-only (a public key alone): Authenticate fails with AuthVerifyOnly after the password check", async () => {
    const { auth, store, clock } = await subject();
    await enableWithRoot(auth);
    const token = await auth.authenticate(ROOT, "root-password");
    const verifier = await AuthStore.load(new ChangeLog(store, true), new JwtTokens({ signMethod: "ES256", publicKey: keys.publicKey, now: clock.now }));
    expect(verifier.identify(token)).toBe(ROOT);
    expect(await failure(() => verifier.authenticate(ROOT, "wrong"))).toBe("AuthFailed");
    expect(await failure(() => verifier.authenticate(ROOT, "root-password"))).toBe("AuthVerifyOnly");
  });
});
