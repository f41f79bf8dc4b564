/**
 * An AuthStore over a ChangeLog on a MemoryStore, with a clock the test
 * moves by hand, and small helpers for the AuthStore's unit tests.
 */
import { AuthStore, ROOT } from "../../src/backend/auth";
import { ChangeLog } from "../../src/persist/changelog";
import { MemoryStore } from "../../src/persist/memory-store";
import { SimpleTokens } from "../../src/backend/simple-tokens";
import { TokenProvider } from "../../src/backend/token-provider";
import { ErrorCode, MergekvError } from "../../src/errors";

/** A clock the test moves by hand. */
export class Clock {
  ms = 1_000_000;
  now = () => this.ms;
}

export interface AuthSubject { store: MemoryStore; log: ChangeLog; auth: AuthStore; clock: Clock }

/** A fresh AuthStore; its tokens from `tokens` (default: simple tokens on the clock). */
export async function authSubject(tokens: (clock: Clock) => TokenProvider = (c) => new SimpleTokens({ now: c.now })): Promise<AuthSubject> {
  const store = new MemoryStore();
  await store.open();
  const log = new ChangeLog(store, true);
  const clock = new Clock();
  return { store, log, clock, auth: await AuthStore.load(log, tokens(clock)) };
}

/** The code of the MergekvError that `f` throws or rejects with. */
export async function failure(f: () => unknown): Promise<ErrorCode> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(MergekvError);
    return (e as MergekvError).code;
  }
  throw new Error("expected a MergekvError, nothing was thrown");
}

/** Adds root (password "root-password", with the root role) and turns auth on. */
export async function enableWithRoot(auth: AuthStore): Promise<void> {
  await auth.userAdd(ROOT, "root-password", false);
  await auth.userGrantRole(ROOT, ROOT);
  await auth.enable();
}

/** The message of the InvalidArgument error `f` throws (the test fails if it throws anything else, or nothing). */
export function invalidArgumentMessage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(MergekvError);
    expect((e as MergekvError).code).toBe("InvalidArgument");
    return (e as MergekvError).message;
  }
  throw new Error("expected InvalidArgument, nothing was thrown");
}

/**
 * What ends a user's sessions, whatever the token kind: a new password
 * (the old one then fails), deleting the user (adding the name again
 * revives nothing), and enabling auth again. Other users' tokens stay valid.
 */
export async function sessionsEnd(auth: AuthStore): Promise<void> {
  await enableWithRoot(auth);
  await auth.userAdd("alice", "pw1", false);
  await auth.userAdd("bob", "pw", false);
  const alice = await auth.authenticate("alice", "pw1");
  const bob = await auth.authenticate("bob", "pw");
  await auth.userChangePassword("alice", "pw2");
  expect(await failure(() => auth.identify(alice))).toBe("InvalidAuthToken");
  expect(await failure(() => auth.authenticate("alice", "pw1"))).toBe("AuthFailed");
  expect(auth.identify(bob)).toBe("bob");
  const alice2 = await auth.authenticate("alice", "pw2");
  expect(auth.identify(alice2)).toBe("alice");

  await auth.userDelete("bob");
  expect(await failure(() => auth.identify(bob))).toBe("InvalidAuthToken");
  await auth.userAdd("bob", "pw", false);
  expect(await failure(() => auth.identify(bob))).toBe("InvalidAuthToken");
  const bob2 = await auth.authenticate("bob", "pw");
  expect(auth.identify(bob2)).toBe("bob");

  const root = await auth.authenticate(ROOT, "root-password");
  await auth.disable();
  expect(auth.identify(alice2)).toBeUndefined(); // auth off: nobody is identified
  await auth.enable();
  for (const token of [alice2, bob2, root]) expect(await failure(() => auth.identify(token))).toBe("InvalidAuthToken");
  expect(auth.identify(await auth.authenticate("alice", "pw2"))).toBe("alice");
}
