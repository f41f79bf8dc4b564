/*
 * The backend's lease table on its own, with an injected clock: grant checks
 * (minimum TTL, chosen or given id, etcd's errors), keep-alive, remaining
 * time, expiry, and which keys each lease holds as MVCC events go by.
 */
import { LeaseTable, LEASE_TTL_MAX_SECONDS, LEASE_TTL_MIN_SECONDS } from "../../src/backend/leases";
import { MvccEvent, KeyValue } from "../../src/backend/mvcc";
import { bytes, key } from "../helpers/frontend";
import { codeOf } from "../helpers/errors";

/** A clock the test moves by hand. */
class Clock {
  ms = 1_000_000;
  now = () => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}


const kv = (k: string, lease: number, mod = 1): KeyValue => ({ key: key(k), create: 1, mod, version: 1, value: bytes("v"), lease });
const putEvent = (k: string, lease: number, prevLease?: number): MvccEvent =>
  ({ type: "put", kv: kv(k, lease, 2), prev: prevLease === undefined ? undefined : kv(k, prevLease) });
const deleteEvent = (k: string, prevLease: number): MvccEvent =>
  ({ type: "delete", kv: { ...kv(k, 0, 3), create: 0, version: 0, value: bytes("") }, prev: kv(k, prevLease) });

/** Grants as the backend does: prepare, then add. */
function grant(table: LeaseTable, id: number, ttlSeconds: number): { id: number; ttlSeconds: number } {
  const g = table.prepareGrant(id, ttlSeconds);
  table.add(g.id, g.ttlSeconds);
  return g;
}

let clock: Clock;
let table: LeaseTable;
beforeEach(() => {
  clock = new Clock();
  table = new LeaseTable(clock.now);
});

describe("grant", () => {
  test("a TTL below the minimum is granted as the minimum (etcd: TTL 1 becomes 2)", () => {
    expect(LEASE_TTL_MIN_SECONDS).toBe(2);
    expect(grant(table, 1, 1).ttlSeconds).toBe(2);
    expect(grant(table, 2, 0).ttlSeconds).toBe(2);
    expect(grant(table, 3, 2).ttlSeconds).toBe(2);
    expect(grant(table, 4, 3).ttlSeconds).toBe(3);
    expect(table.get(1)?.ttlSeconds).toBe(2);
  });

  test("id 0 lets the table choose a fresh positive id below 2^48; a given id is kept", () => {
    expect(grant(table, 42, 10).id).toBe(42);
    const chosen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const { id } = grant(table, 0, 10);
      expect(Number.isSafeInteger(id)).toBe(true);
      expect(id).toBeGreaterThan(0);
      expect(id).toBeLessThan(2 ** 48);
      chosen.add(id);
    }
    expect(chosen.size).toBe(200);
    expect(table.size).toBe(201);
    expect(table.ids().sort((a, b) => a - b)).toEqual([...chosen, 42].sort((a, b) => a - b));
  });

  test("prepareGrant adds nothing", () => {
    const g = table.prepareGrant(7, 10);
    expect(g).toEqual({ id: 7, ttlSeconds: 10 });
    expect([table.has(7), table.size]).toEqual([false, 0]);
  });

  test("an id already granted is LeaseExists", () => {
    grant(table, 9, 10);
    expect(codeOf(() => table.prepareGrant(9, 30))).toBe("LeaseExists");
    expect(table.get(9)?.ttlSeconds).toBe(10);
  });

  test("a TTL over 9e9 seconds is LeaseTTLTooLarge; 9e9 itself is granted", () => {
    expect(codeOf(() => table.prepareGrant(1, LEASE_TTL_MAX_SECONDS + 1))).toBe("LeaseTTLTooLarge");
    expect(codeOf(() => table.prepareGrant(0, 1e12))).toBe("LeaseTTLTooLarge");
    expect(table.prepareGrant(1, LEASE_TTL_MAX_SECONDS).ttlSeconds).toBe(9e9);
  });

  test("a negative id is refused", () => {
    expect(codeOf(() => table.prepareGrant(-5, 10))).toBe("InvalidArgument");
  });
});

describe("time", () => {
  test("remainingSeconds counts down, truncated, and stops at 0", () => {
    const lease = table.add(1, 10);
    expect(table.remainingSeconds(lease)).toBe(10);
    clock.advance(0.5);
    expect(table.remainingSeconds(lease)).toBe(9);
    clock.advance(6);
    expect(table.remainingSeconds(lease)).toBe(3);
    clock.advance(60);
    expect(table.remainingSeconds(lease)).toBe(0);
  });

  test("keepAlive renews to the full TTL and returns it; an unknown id returns 0", () => {
    const lease = table.add(1, 10);
    clock.advance(8);
    expect(table.remainingSeconds(lease)).toBe(2);
    expect(table.keepAlive(1)).toBe(10);
    expect(table.remainingSeconds(lease)).toBe(10);
    expect(table.keepAlive(999)).toBe(0);
    expect(table.has(999)).toBe(false);
  });

  test("a lease whose time is up is not renewed, even before it is revoked", () => {
    const lease = table.add(1, 10);
    clock.advance(9.999);
    expect(table.keepAlive(1)).toBe(10);
    clock.advance(10);
    expect(table.keepAlive(1)).toBe(0);
    expect([table.expired(), table.remainingSeconds(lease)]).toEqual([[1], 0]);
  });

  test("expired() lists exactly the leases whose time is up, without removing them", () => {
    table.add(1, 2);
    table.add(2, 5);
    table.add(3, 10);
    expect(table.expired()).toEqual([]);
    clock.advance(1.999);
    expect(table.expired()).toEqual([]);
    clock.advance(0.001);
    expect(table.expired()).toEqual([1]);
    clock.advance(3);
    expect(table.expired().sort()).toEqual([1, 2]);
    expect(table.size).toBe(3);
    expect(table.keepAlive(3)).toBe(10); // at t=5: now due at t=15
    clock.advance(6);
    expect(table.expired().sort()).toEqual([1, 2]);
    clock.advance(4);
    expect(table.expired().sort()).toEqual([1, 2, 3]);
  });

  test("remove returns the lease once, then undefined", () => {
    const lease = table.add(1, 10);
    expect(table.remove(1)).toBe(lease);
    expect(table.remove(1)).toBeUndefined();
    expect(table.has(1)).toBe(false);
    expect(table.keepAlive(1)).toBe(0);
  });
});

describe("track", () => {
  const keysOf = (id: number) => [...(table.get(id)?.keys ?? [])].sort();

  test("a put with a lease attaches the key; a put without one attaches nothing", () => {
    table.add(1, 10);
    expect(table.track([putEvent("a", 1), putEvent("b", 0), putEvent("c", 1)])).toEqual([]);
    expect(keysOf(1)).toEqual([key("a"), key("c")]);
  });

  test("a delete detaches the key", () => {
    table.add(1, 10);
    table.track([putEvent("a", 1), putEvent("b", 1)]);
    table.track([deleteEvent("a", 1)]);
    expect(keysOf(1)).toEqual([key("b")]);
  });

  test("a re-put with another lease moves the key; a re-put with none detaches it", () => {
    table.add(1, 10);
    table.add(2, 10);
    table.track([putEvent("a", 1), putEvent("b", 1)]);
    table.track([putEvent("a", 2, 1)]);
    expect([keysOf(1), keysOf(2)]).toEqual([[key("b")], [key("a")]]);
    table.track([putEvent("b", 0, 1)]);
    expect([keysOf(1), keysOf(2)]).toEqual([[], [key("a")]]);
    table.track([putEvent("a", 2, 2)]); // same lease again: still attached
    expect(keysOf(2)).toEqual([key("a")]);
  });

  test("events of one batch apply in order", () => {
    table.add(1, 10);
    table.add(2, 10);
    table.track([putEvent("a", 1), putEvent("a", 2, 1), deleteEvent("a", 2), putEvent("a", 1)]);
    expect([keysOf(1), keysOf(2)]).toEqual([[key("a")], []]);
  });

  test("a put naming a lease that does not exist is returned as an orphan", () => {
    table.add(1, 10);
    expect(table.track([putEvent("a", 1), putEvent("b", 77), putEvent("c", 0), putEvent("d", 78)])).toEqual([key("b"), key("d")]);
    expect(keysOf(1)).toEqual([key("a")]);
    // A key moving away from a revoked lease is not an error.
    table.remove(1);
    expect(table.track([putEvent("a", 0, 1), deleteEvent("b", 77)])).toEqual([]);
  });
});
