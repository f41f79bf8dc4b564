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
