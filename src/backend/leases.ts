/**
 * Leases: granted TTLs, kept alive by clients; when one expires or is
 * revoked, every key attached to it is deleted at one revision.
 *
 * This table is the backend's. Grants and revocations are persisted (`L|id`)
 * and announced to the frontends (which refuse a Put naming an unknown lease,
 * with etcd's error). Expiry times are not persisted: as etcd does after a
 * leader change, a restart gives every lease its full TTL again.
 */
import { randomInt } from "node:crypto";
import { MergekvError } from "../errors";
import { MvccEvent } from "./mvcc";

/** etcd's minimum TTL (a TTL of 1 is granted as 2). */
export const LEASE_TTL_MIN_SECONDS = 2;
/** etcd's maximum: larger TTLs get "too large lease TTL". */
export const LEASE_TTL_MAX_SECONDS = 9_000_000_000;
/** Server-chosen lease ids stay below 2^48: safe as JS numbers and in every client. */
const LEASE_ID_RANDOM_MAX = 2 ** 48;

/** A lease granted (exists) or revoked, as announced to the frontends: in order, as an id may be revoked and granted again. */
export interface LeaseChange {
  id: number;
  exists: boolean;
}

export interface Lease {
  id: number;
  ttlSeconds: number;
  expiresAtMs: number;
  keys: Set<string>;
}

export class LeaseTable {
  private readonly leases = new Map<number, Lease>();

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.leases.size;
  }

  has(id: number): boolean {
    return this.leases.has(id);
  }

  get(id: number): Lease | undefined {
    return this.leases.get(id);
  }

  ids(): number[] {
    return [...this.leases.keys()];
  }

  /** Checks a grant request and returns the (id, TTL) it will have; adds nothing. */
  prepareGrant(requestedId: number, ttlSeconds: number): { id: number; ttlSeconds: number } {
    if (ttlSeconds > LEASE_TTL_MAX_SECONDS) throw new MergekvError("LeaseTTLTooLarge");
    if (requestedId < 0) throw new MergekvError("InvalidArgument", `mergekv: lease id ${requestedId} is negative`);
    let id = requestedId;
    if (id === 0) {
      do id = randomInt(1, LEASE_ID_RANDOM_MAX); while (this.leases.has(id));
    } else if (this.leases.has(id)) throw new MergekvError("LeaseExists");
    return { id, ttlSeconds: Math.max(ttlSeconds, LEASE_TTL_MIN_SECONDS) };
  }

  add(id: number, ttlSeconds: number): Lease {
    const lease = { id, ttlSeconds, expiresAtMs: this.now() + ttlSeconds * 1000, keys: new Set<string>() };
    this.leases.set(id, lease);
    return lease;
  }

  remove(id: number): Lease | undefined {
    const lease = this.leases.get(id);
    this.leases.delete(id);
    return lease;
  }

  /**
   * Renews a lease; returns its TTL, or 0 if it does not exist or its time is
   * already up (clients read 0 as "lost"). As etcd, an expired lease is never
   * renewed, even before the expiry check has revoked it.
   */
  keepAlive(id: number): number {
    const lease = this.leases.get(id);
    if (!lease || lease.expiresAtMs <= this.now()) return 0;
    lease.expiresAtMs = this.now() + lease.ttlSeconds * 1000;
    return lease.ttlSeconds;
  }

  /** Gives every lease its full TTL from now (when the server starts serving). */
  restartClocks(): void {
    const now = this.now();
    for (const lease of this.leases.values()) lease.expiresAtMs = now + lease.ttlSeconds * 1000;
  }

  /** Seconds left, as etcd reports them (truncated, never below 0). */
  remainingSeconds(lease: Lease): number {
    return Math.max(0, Math.floor((lease.expiresAtMs - this.now()) / 1000));
  }

  /** Leases whose time is up. */
  expired(): number[] {
    const now = this.now();
    const out: number[] = [];
    for (const lease of this.leases.values()) if (lease.expiresAtMs <= now) out.push(lease.id);
    return out;
  }

  /** Follows which keys each lease holds. Returns keys written with a lease that does not exist. */
  track(events: readonly MvccEvent[]): string[] {
    const orphans: string[] = [];
    for (const e of events) {
      if (e.prev?.lease) this.leases.get(e.prev.lease)?.keys.delete(e.kv.key);
      if (e.type === "put" && e.kv.lease !== 0) {
        const lease = this.leases.get(e.kv.lease);
        if (lease) lease.keys.add(e.kv.key);
        else orphans.push(e.kv.key);
      }
    }
    return orphans;
  }
}
