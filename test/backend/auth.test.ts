/*
 * The AuthStore on its own, over a ChangeLog on a MemoryStore, with an
 * injected clock: enabling (etcd's root rules), authentication, simple
 * tokens and their TTL, user and role management errors, and what is
 * persisted. Authorization of key ranges: auth-authorize.test.ts.
 */
import { AuthStore, Need, ROOT } from "../../src/backend/auth";
import { SimpleTokens, TOKEN_TTL_MS } from "../../src/backend/simple-tokens";
import { ChangeLog } from "../../src/persist/changelog";
import { authSubject as subject, enableWithRoot, failure, sessionsEnd } from "../helpers/auth";

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

  test("a new password, deleting the user (and adding the name again), or enabling auth again ends their tokens", async () => {
    await sessionsEnd((await subject()).auth);
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

    const again = await AuthStore.load(new ChangeLog(store, true), new SimpleTokens({ now: clock.now }));
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
