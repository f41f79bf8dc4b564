/*
 * The AuthStore on its own, over a ChangeLog on a MemoryStore, with an
 * injected clock: enabling (etcd's root rules), authentication, simple
 * tokens and their TTL, authorization of key ranges (single key, range,
 * prefix, from-key, and ranges covered only by a union of permissions,
 * checked against a brute-force model), user and role management errors,
 * and what is persisted.
 */
import { AuthStore, Need, PermType, Permission, ROOT, TOKEN_TTL_MS } from "../../src/backend/auth";
import { ChangeLog } from "../../src/persist/changelog";
import { MemoryStore } from "../../src/persist/memory-store";
import { ErrorCode, MergekvError } from "../../src/errors";
import { SeededRandom, chooseSeed } from "../helpers/random";

/** A clock the test moves by hand. */
class Clock {
  ms = 1_000_000;
  now = () => this.ms;
}

interface Subject { store: MemoryStore; log: ChangeLog; auth: AuthStore; clock: Clock }

async function subject(): Promise<Subject> {
  const store = new MemoryStore();
  await store.open();
  const log = new ChangeLog(store, true);
  const clock = new Clock();
  return { store, log, clock, auth: await AuthStore.load(log, clock.now) };
}

/** The code of the MergekvError that `f` throws or rejects with. */
async function failure(f: () => unknown): Promise<ErrorCode> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(MergekvError);
    return (e as MergekvError).code;
  }
  throw new Error("expected a MergekvError, nothing was thrown");
}

/** Adds root (with the root role) and turns auth on. */
async function enableWithRoot(auth: AuthStore): Promise<void> {
  await auth.userAdd(ROOT, "root-password", false);
  await auth.userGrantRole(ROOT, ROOT);
  await auth.enable();
}

const read = (key: string, rangeEnd = ""): Need => ({ access: "read", key, rangeEnd });
const write = (key: string, rangeEnd = ""): Need => ({ access: "write", key, rangeEnd });

describe("enabling", () => {
  test("needs a root user that has the root role; the root role itself need not exist", async () => {
    const { auth } = await subject();
    expect(auth.enabled).toBe(false);
    expect(await failure(() => auth.enable())).toBe("RootUserNotExist");
    await auth.userAdd(ROOT, "pw", false);
    expect(await failure(() => auth.enable())).toBe("RootRoleNotExist");
    await auth.userGrantRole(ROOT, ROOT);
    await auth.enable();
    expect(auth.enabled).toBe(true);
    expect(auth.roleList()).toEqual([]);
  });

  test("while disabled nobody is identified and everything is authorized", async () => {
    const { auth } = await subject();
    expect(auth.identify(undefined)).toBeUndefined();
    expect(auth.identify("anything")).toBeUndefined();
    expect(() => auth.authorize(undefined, [{ access: "root" }, write("k")])).not.toThrow();
    await enableWithRoot(auth);
    expect(await failure(() => auth.authorize(undefined, [read("k")]))).toBe("UserEmpty");
    await auth.disable();
    expect(auth.enabled).toBe(false);
    expect(() => auth.authorize(undefined, [{ access: "root" }])).not.toThrow();
  });
});

describe("authenticate and tokens", () => {
  test("only while enabled; right password gives a token, wrong password or unknown user fails", async () => {
    const { auth } = await subject();
    await auth.userAdd("alice", "alice-pw", false);
    expect(await failure(() => auth.authenticate("alice", "alice-pw"))).toBe("AuthNotEnabled");
    await enableWithRoot(auth);
    const token = await auth.authenticate("alice", "alice-pw");
    expect(auth.identify(token)).toBe("alice");
    expect(await auth.authenticate("alice", "alice-pw")).not.toBe(token);
    expect(await failure(() => auth.authenticate("alice", "wrong"))).toBe("AuthFailed");
    expect(await failure(() => auth.authenticate("alice", ""))).toBe("AuthFailed");
    expect(await failure(() => auth.authenticate("nobody", "alice-pw"))).toBe("AuthFailed");
    expect(await failure(() => auth.authenticate("", ""))).toBe("AuthFailed");
  });

  test("a user added without a password cannot authenticate, whatever is sent", async () => {
    const { auth } = await subject();
    await enableWithRoot(auth);
    await auth.userAdd("svc", "", true);
    expect(await failure(() => auth.authenticate("svc", ""))).toBe("AuthFailed");
    expect(await failure(() => auth.authenticate("svc", "guess"))).toBe("AuthFailed");
    await auth.userChangePassword("svc", "now-set");
    expect(auth.identify(await auth.authenticate("svc", "now-set"))).toBe("svc");
  });

  test("missing token: UserEmpty; unknown or empty token: InvalidAuthToken", async () => {
    const { auth } = await subject();
    await enableWithRoot(auth);
    expect(await failure(() => auth.identify(undefined))).toBe("UserEmpty");
    expect(await failure(() => auth.identify(""))).toBe("InvalidAuthToken");
    expect(await failure(() => auth.identify("no-such-token"))).toBe("InvalidAuthToken");
  });

  test("a token lives TOKEN_TTL_MS past its last use", async () => {
    const { auth, clock } = await subject();
    await enableWithRoot(auth);
    const token = await auth.authenticate(ROOT, "root-password");
    clock.ms += TOKEN_TTL_MS - 1;
    expect(auth.identify(token)).toBe(ROOT); // used: lives another TTL from here
    clock.ms += TOKEN_TTL_MS - 1;
    expect(auth.identify(token)).toBe(ROOT);
    const idle = await auth.authenticate(ROOT, "root-password");
    clock.ms += TOKEN_TTL_MS;
    expect(await failure(() => auth.identify(token))).toBe("InvalidAuthToken");
    expect(await failure(() => auth.identify(idle))).toBe("InvalidAuthToken");
  });

  test("deleting the user, changing their password, or disabling auth ends their tokens", async () => {
    const { auth } = await subject();
    await enableWithRoot(auth);
    await auth.userAdd("alice", "pw1", false);
    await auth.userAdd("bob", "pw", false);
    const alice = await auth.authenticate("alice", "pw1");
    const bob = await auth.authenticate("bob", "pw");
    await auth.userChangePassword("alice", "pw2");
    expect(await failure(() => auth.identify(alice))).toBe("InvalidAuthToken");
    expect(auth.identify(bob)).toBe("bob");
    expect(await failure(() => auth.authenticate("alice", "pw1"))).toBe("AuthFailed");
    const alice2 = await auth.authenticate("alice", "pw2");
    await auth.userDelete("alice");
    expect(await failure(() => auth.identify(alice2))).toBe("InvalidAuthToken");
    const root = await auth.authenticate(ROOT, "root-password");
    await auth.disable();
    await auth.enable();
    expect(await failure(() => auth.identify(root))).toBe("InvalidAuthToken");
    expect(await failure(() => auth.identify(bob))).toBe("InvalidAuthToken");
  });
});

describe("authorize", () => {
  /** Enabled, with user "u" holding role "r" that has exactly `perms`. */
  async function userWith(perms: Permission[]): Promise<AuthStore> {
    const { auth } = await subject();
    await enableWithRoot(auth);
    await auth.userAdd("u", "pw", false);
    await auth.roleAdd("r");
    for (const p of perms) await auth.roleGrantPermission("r", p);
    await auth.userGrantRole("u", "r");
    return auth;
  }
  const allowed = (auth: AuthStore, ...needs: Need[]): boolean => {
    try {
      auth.authorize("u", needs);
      return true;
    } catch (e) {
      expect((e as MergekvError).code).toBe("PermissionDenied");
      return false;
    }
  };

  test("root may do anything; others never what needs root; a user with no roles nothing", async () => {
    const auth = await userWith([{ permType: "Readwrite", key: "", rangeEnd: "\0" }]);
    expect(() => auth.authorize(ROOT, [{ access: "root" }, write("\0", "\0"), read("x")])).not.toThrow();
    expect(allowed(auth, { access: "root" })).toBe(false);
    expect(allowed(auth, read("x"), write("\0", "\0"))).toBe(true);
    await auth.userAdd("nobody", "pw", false);
    expect(await failure(() => auth.authorize("nobody", [read("x")]))).toBe("PermissionDenied");
  });

  test("Read, Write and Readwrite grant what they say, and only that", async () => {
    const auth = await userWith([
      { permType: "Read", key: "r", rangeEnd: "" },
      { permType: "Write", key: "w", rangeEnd: "" },
      { permType: "Readwrite", key: "rw", rangeEnd: "" },
    ]);
    expect([allowed(auth, read("r")), allowed(auth, write("r"))]).toEqual([true, false]);
    expect([allowed(auth, read("w")), allowed(auth, write("w"))]).toEqual([false, true]);
    expect([allowed(auth, read("rw")), allowed(auth, write("rw"))]).toEqual([true, true]);
    expect(allowed(auth, read("r"), write("r"))).toBe(false); // every need must be met
  });

  test("a single-key permission covers that key only", async () => {
    const auth = await userWith([{ permType: "Readwrite", key: "k", rangeEnd: "" }]);
    expect(allowed(auth, read("k"))).toBe(true);
    expect(allowed(auth, read("k", "k\0"))).toBe(true); // the range holding just "k"
    expect(allowed(auth, read("k", "k\0\0"))).toBe(false);
    expect(allowed(auth, read("k0"))).toBe(false);
    expect(allowed(auth, read("j", "l"))).toBe(false);
    expect(allowed(auth, read("k", "\0"))).toBe(false);
  });

  test("a permission on the empty key covers the empty key, not everything", async () => {
    const auth = await userWith([{ permType: "Readwrite", key: "", rangeEnd: "" }]);
    expect(allowed(auth, read(""))).toBe(true);
    expect(allowed(auth, read("a"))).toBe(false);
    expect(allowed(auth, read("a", "\0"))).toBe(false);
  });

  test("range, prefix and from-key permissions", async () => {
    const auth = await userWith([
      { permType: "Read", key: "b", rangeEnd: "d" },
      { permType: "Read", key: "app/", rangeEnd: "app0" }, // what etcdctl sends for --prefix app/
      { permType: "Read", key: "x", rangeEnd: "\0" }, // from key "x" on
    ]);
    expect([allowed(auth, read("b")), allowed(auth, read("c\xff")), allowed(auth, read("d"))]).toEqual([true, true, false]);
    expect([allowed(auth, read("b", "d")), allowed(auth, read("b", "d\0")), allowed(auth, read("a\xff", "c"))]).toEqual([true, false, false]);
    expect([allowed(auth, read("app/")), allowed(auth, read("app/a/b")), allowed(auth, read("app")), allowed(auth, read("app0"))]).toEqual([true, true, false, false]);
    expect(allowed(auth, read("app/", "app0"))).toBe(true);
    expect(allowed(auth, read("app/x", "app0"))).toBe(true);
    expect([allowed(auth, read("x")), allowed(auth, read("\xff\xff")), allowed(auth, read("w\xff"))]).toEqual([true, true, false]);
    expect([allowed(auth, read("x", "\0")), allowed(auth, read("y", "\0")), allowed(auth, read("w", "\0"))]).toEqual([true, true, false]);
    expect(allowed(auth, read("x", "\xff\xff\xff"))).toBe(true);
  });

  test("a range covered by several permissions together is allowed; one gap denies it", async () => {
    const auth = await userWith([
      { permType: "Read", key: "a", rangeEnd: "c" },
      { permType: "Readwrite", key: "c", rangeEnd: "e" },
      { permType: "Read", key: "e", rangeEnd: "" },
      { permType: "Read", key: "e\0", rangeEnd: "g" },
      { permType: "Read", key: "h", rangeEnd: "\0" },
    ]);
    expect(allowed(auth, read("a", "g"))).toBe(true);
    expect(allowed(auth, read("b", "f"))).toBe(true);
    expect(allowed(auth, read("a", "g\0"))).toBe(false); // "g" .. "h" is the gap
    expect(allowed(auth, read("a", "\0"))).toBe(false);
    expect(allowed(auth, read("h", "\0"))).toBe(true);
    expect(allowed(auth, write("c", "e"))).toBe(true);
    expect(allowed(auth, write("b", "e"))).toBe(false); // "a".."c" is read-only
  });

  test("only roles granted to the user count, and revoking a role or permission takes effect at once", async () => {
    const auth = await userWith([{ permType: "Read", key: "k", rangeEnd: "" }]);
    await auth.roleAdd("other");
    await auth.roleGrantPermission("other", { permType: "Readwrite", key: "", rangeEnd: "\0" });
    expect(allowed(auth, write("k"))).toBe(false);
    await auth.roleRevokePermission("r", "k", "");
    expect(allowed(auth, read("k"))).toBe(false);
    await auth.userGrantRole("u", "other");
    expect(allowed(auth, write("k"))).toBe(true);
    await auth.userRevokeRole("u", "other");
    expect(allowed(auth, read("k"))).toBe(false);
  });
});

describe("authorize against a brute-force model", () => {
  const ALPHABET = ["a", "b", "c"];
  const words = (maxLength: number, letters: string[]): string[] => {
    let level = [""];
    const all = [""];
    for (let n = 1; n <= maxLength; n++) {
      level = level.flatMap((w) => letters.map((l) => w + l));
      all.push(...level);
    }
    return all;
  };
  /** Keys and range ends the test draws from. */
  const KEYS = words(2, ALPHABET).concat(["\0"]);
  /**
   * Every point where a gap in coverage can start: request keys and permission
   * ends (all in KEYS) and single-key ends (key + "\0"). Checking these points
   * decides coverage of the whole, infinite, key space exactly.
   */
  const POINTS = words(3, ["\0", ...ALPHABET]);
  const RUNS = 300;

  const within = (k: string, key: string, rangeEnd: string): boolean =>
    rangeEnd === "" ? k === key : rangeEnd === "\0" ? k >= key : k >= key && k < rangeEnd;
  function modelAllows(perms: Permission[], need: Need & { access: "read" | "write" }): boolean {
    const applying = perms.filter((p) => p.permType === "Readwrite" || p.permType === (need.access === "read" ? "Read" : "Write"));
    const covered = (k: string) => applying.some((p) => within(k, p.key, p.rangeEnd));
    if (need.rangeEnd === "") return covered(need.key);
    return POINTS.filter((k) => within(k, need.key, need.rangeEnd)).every(covered);
  }

  test("random permissions over several roles, random requests: allowed exactly when the model says so", async () => {
    const rnd = new SeededRandom(chooseSeed("auth: union of permissions vs brute force"));
    const { auth } = await subject();
    await enableWithRoot(auth);
    await auth.userAdd("u", "pw", false);
    const rangeEndOf = (weights: [number, number]) => {
      const x = rnd.next();
      return x < weights[0] ? "" : x < weights[0] + weights[1] ? "\0" : rnd.pick(KEYS);
    };
    const permTypes: PermType[] = ["Read", "Write", "Readwrite"];
    for (let run = 0; run < RUNS; run++) {
      for (const r of auth.roleList()) await auth.roleDelete(r);
      const granted: Permission[] = [];
      for (const role of ["r1", "r2", "not-granted"]) {
        await auth.roleAdd(role);
        if (role !== "not-granted") await auth.userGrantRole("u", role);
        for (let i = rnd.below(4); i > 0; i--) {
          const p: Permission = { permType: rnd.pick(permTypes), key: rnd.pick(KEYS), rangeEnd: rangeEndOf([0.35, 0.15]) };
          await auth.roleGrantPermission(role, p);
        }
        if (role !== "not-granted") granted.push(...auth.roleGet(role));
      }
      const needs = [0, 1, 2].map(() => ({ access: rnd.pick(["read", "write"] as const), key: rnd.pick(KEYS.slice(1)), rangeEnd: rangeEndOf([0.3, 0.2]) }));
      const actual = (ns: Need[]) => { try { auth.authorize("u", ns); return true; } catch { return false; } };
      for (const need of needs) {
        const what = JSON.stringify({ run, granted, need }); // the whole case, on one line of the diff
        expect({ what, allowed: actual([need]) }).toEqual({ what, allowed: modelAllows(granted, need) });
      }
      expect(actual(needs)).toBe(needs.every((n) => modelAllows(granted, n)));
    }
  });
});

describe("user and role management", () => {
  test("etcd's errors for users", async () => {
    const { auth } = await subject();
    await auth.userAdd("alice", "pw", false);
    expect(await failure(() => auth.userAdd("alice", "other", false))).toBe("UserExists");
    expect(await failure(() => auth.userAdd("", "pw", false))).toBe("UserEmpty");
    expect(await failure(() => auth.userGet("bob"))).toBe("UserNotFound");
    expect(await failure(() => auth.userDelete("bob"))).toBe("UserNotFound");
    expect(await failure(() => auth.userChangePassword("bob", "pw"))).toBe("UserNotFound");
    expect(await failure(() => auth.userGrantRole("bob", "r"))).toBe("UserNotFound");
    expect(await failure(() => auth.userRevokeRole("bob", "r"))).toBe("UserNotFound");
    expect(await failure(() => auth.userGrantRole("alice", "missing"))).toBe("RoleNotFound");
    expect(await failure(() => auth.userRevokeRole("alice", "missing"))).toBe("RoleNotGranted");
    await auth.userAdd("bob", "pw", false);
    expect(auth.userList()).toEqual(["alice", "bob"]);
    await auth.userDelete("alice");
    expect(auth.userList()).toEqual(["bob"]);
  });

  test("etcd's errors for roles and permissions", async () => {
    const { auth } = await subject();
    await auth.roleAdd("r");
    expect(await failure(() => auth.roleAdd("r"))).toBe("RoleExists");
    expect(await failure(() => auth.roleAdd(""))).toBe("InvalidArgument");
    expect(await failure(() => auth.roleGet("missing"))).toBe("RoleNotFound");
    expect(await failure(() => auth.roleDelete("missing"))).toBe("RoleNotFound");
    expect(await failure(() => auth.roleGrantPermission("missing", { permType: "Read", key: "k", rangeEnd: "" }))).toBe("RoleNotFound");
    expect(await failure(() => auth.roleRevokePermission("missing", "k", ""))).toBe("RoleNotFound");
    await auth.roleGrantPermission("r", { permType: "Read", key: "k", rangeEnd: "" });
    expect(await failure(() => auth.roleRevokePermission("r", "k", "\0"))).toBe("PermissionNotGranted");
    expect(await failure(() => auth.roleRevokePermission("r", "other", ""))).toBe("PermissionNotGranted");
    await auth.roleRevokePermission("r", "k", "");
    expect(auth.roleGet("r")).toEqual([]);
  });

  test("granting the same key and range again changes its type; roles list their permissions by key", async () => {
    const { auth } = await subject();
    await auth.roleAdd("r");
    await auth.roleGrantPermission("r", { permType: "Read", key: "m", rangeEnd: "n" });
    await auth.roleGrantPermission("r", { permType: "Write", key: "b", rangeEnd: "" });
    await auth.roleGrantPermission("r", { permType: "Readwrite", key: "m", rangeEnd: "n" });
    await auth.roleGrantPermission("r", { permType: "Read", key: "a", rangeEnd: "\0" });
    expect(auth.roleGet("r")).toEqual([
      { permType: "Read", key: "a", rangeEnd: "\0" },
      { permType: "Write", key: "b", rangeEnd: "" },
      { permType: "Readwrite", key: "m", rangeEnd: "n" },
    ]);
  });

  test("deleting a role takes it from its users; granting a role twice keeps one", async () => {
    const { auth } = await subject();
    await auth.userAdd("alice", "pw", false);
    await auth.roleAdd("r");
    await auth.roleAdd("s");
    await auth.userGrantRole("alice", "s");
    await auth.userGrantRole("alice", "r");
    await auth.userGrantRole("alice", "r");
    expect(auth.userGet("alice")).toEqual(["r", "s"]);
    await auth.roleDelete("r");
    expect(auth.userGet("alice")).toEqual(["s"]);
    expect(auth.roleList()).toEqual(["s"]);
  });

  test("while enabled, root cannot be deleted nor lose the root role, and the root role stays; while disabled they can", async () => {
    const { auth } = await subject();
    await auth.roleAdd(ROOT);
    await enableWithRoot(auth);
    expect(await failure(() => auth.userDelete(ROOT))).toBe("InvalidAuthManagement");
    expect(await failure(() => auth.userRevokeRole(ROOT, ROOT))).toBe("InvalidAuthManagement");
    expect(await failure(() => auth.roleDelete(ROOT))).toBe("InvalidAuthManagement");
    expect(auth.userGet(ROOT)).toEqual([ROOT]);
    expect(auth.roleGet(ROOT)).toEqual([]);
    await auth.disable();
    await auth.userRevokeRole(ROOT, ROOT);
    await auth.roleDelete(ROOT);
    await auth.userDelete(ROOT);
    expect(auth.userList()).toEqual([]);
    expect(await failure(() => auth.enable())).toBe("RootUserNotExist");
  });
});

describe("persistence", () => {
  test("users, roles, permissions, the enabled flag and the revision survive a reload; tokens do not", async () => {
    const { auth, store, clock } = await subject();
    await auth.roleAdd("app");
    await auth.roleGrantPermission("app", { permType: "Readwrite", key: "app/", rangeEnd: "app0" });
    await auth.userAdd("alice", "alice-pw", false);
    await auth.userGrantRole("alice", "app");
    await enableWithRoot(auth);
    const token = await auth.authenticate("alice", "alice-pw");
    const revision = auth.revision;
    expect(revision).toBeGreaterThan(1);

    const again = await AuthStore.load(new ChangeLog(store, true), clock.now);
    expect(again.enabled).toBe(true);
    expect(again.revision).toBe(revision);
    expect(again.userList()).toEqual(["alice", ROOT]);
    expect(again.userGet("alice")).toEqual(["app"]);
    expect(again.roleGet("app")).toEqual([{ permType: "Readwrite", key: "app/", rangeEnd: "app0" }]);
    expect(await failure(() => again.identify(token))).toBe("InvalidAuthToken");
    const fresh = await again.authenticate("alice", "alice-pw");
    expect(again.identify(fresh)).toBe("alice");
    expect(() => again.authorize("alice", [write("app/x")])).not.toThrow();
    expect(await failure(() => again.authenticate("alice", "wrong"))).toBe("AuthFailed");
  });

  test("a failed check changes nothing: the revision stays", async () => {
    const { auth } = await subject();
    await auth.userAdd("alice", "pw", false);
    const revision = auth.revision;
    await failure(() => auth.userAdd("alice", "pw", false));
    await failure(() => auth.userGrantRole("alice", "missing"));
    expect(auth.revision).toBe(revision);
  });

  test("passwords are not stored in clear, and equal passwords hash differently", async () => {
    const { auth, log } = await subject();
    const password = "correct horse battery staple";
    await auth.userAdd("alice", password, false);
    await auth.userAdd("bob", password, false);
    const record = Buffer.from((await log.getMeta("auth"))!);
    for (const form of [password, Buffer.from(password).toString("hex"), Buffer.from(password).toString("base64")]) {
      expect(record.includes(form)).toBe(false);
    }
    const users = JSON.parse(record.toString("utf8")).users as { name: string; hash: string }[];
    expect(users.map((u) => u.name)).toEqual(["alice", "bob"]);
    expect(users[0].hash.length).toBeGreaterThanOrEqual(64);
    expect(users[0].hash).not.toBe(users[1].hash);
  });

  test("a corrupt auth record fails the load with Corrupt", async () => {
    const { log } = await subject();
    await log.putMeta("auth", Buffer.from("{not json"));
    expect(await failure(() => AuthStore.load(log))).toBe("Corrupt");
  });
});
