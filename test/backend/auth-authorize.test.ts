/*
 * AuthStore.authorize: root, Read/Write/Readwrite, single-key, range, prefix
 * and from-key ("\0") permissions, and ranges covered only by the union of
 * several permissions, checked against a brute-force model with a printed seed.
 */
import { AuthStore, Need, PermType, Permission, ROOT } from "../../src/backend/auth";
import { MergekvError } from "../../src/errors";
import { authSubject as subject, enableWithRoot, failure } from "../helpers/auth";
import { SeededRandom, chooseSeed } from "../helpers/random";

const read = (key: string, rangeEnd = ""): Need => ({ access: "read", key, rangeEnd });
const write = (key: string, rangeEnd = ""): Need => ({ access: "write", key, rangeEnd });

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
