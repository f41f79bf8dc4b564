/**
 * The lease lifecycle around the lease table: restore at start, expiry,
 * grant (durable before it is answered), revoke (attached keys deleted at one
 * revision by a change the backend authors). REDESIGN.md, "Leases".
 */
import { ChangeLog } from "../persist/changelog";
import { MergekvError, assert } from "../errors";
import { LeaseTable } from "./leases";
import { RANGE_END_ALL } from "./mvcc";
import type { Backend, BackendOptions } from "./backend";
import { KeyString } from "../persist/encoding";

/** How often lease expiry is checked. */
export const LEASE_CHECK_INTERVAL_MS = 250;

export class LeaseKeeper {
  private timer: NodeJS.Timeout | null = null;
  /** Lease ids whose grant is being made durable (bounded by concurrent LeaseGrant requests). */
  private readonly granting = new Set<number>();
  /** Recovered keys whose lease is gone (revoked before a crash), deleted by `start`. */
  private orphans: string[] = [];

  constructor(private readonly backend: Backend, private readonly leases: LeaseTable, private readonly log: ChangeLog, private readonly opts: BackendOptions) {}

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Recovered leases come back with their keys re-attached; their clocks
   * start in `start`. Keys whose lease is gone are deleted there too.
   */
  restore(leases: [number, number][]): void {
    for (const [id, ttl] of leases) this.leases.add(id, ttl);
    this.orphans = this.leases.track([...this.backend.replica.mvcc.range(RANGE_END_ALL, RANGE_END_ALL)].map((kv) => ({ type: "put" as const, kv })));
  }

  /**
   * Starts expiring leases (unless `expireLeases` is off), every lease with its
   * full TTL from now, as etcd's new leader does: the time recovery and
   * starting the frontends took is not held against leases whose clients
   * could not reach us to keep them alive. Call once, when about to serve.
   */
  start(): void {
    assert(!this.timer, "lease expiry started once");
    if (this.opts.expireLeases === false) return;
    // Deleted only now: the deletion is broadcast, and the frontends (started from the
    // recovered state) must be there to take it (at open, the server had none yet).
    if (this.orphans.length > 0) void this.backend.deleteAuthored(this.orphans);
    this.orphans = [];
    this.leases.restartClocks();
    this.timer = setInterval(() => this.expire(), LEASE_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  private expire(): void {
    for (const id of this.leases.expired()) {
      this.revoke(id).catch((e) => this.opts.log?.(`lease ${id} expiry failed: ${(e as Error).message}`));
    }
  }

  /** LeaseGrant: durable when it resolves; id 0 lets the server choose. */
  async grant(requestedId: number, ttlSeconds: number): Promise<{ id: number; ttlSeconds: number }> {
    const grant = this.leases.prepareGrant(requestedId, ttlSeconds);
    // Reserved until durable: a concurrent grant of this id must not overwrite its record.
    if (this.granting.has(grant.id)) throw new MergekvError("LeaseExists");
    this.granting.add(grant.id);
    try {
      await this.log.putLease(grant.id, grant.ttlSeconds);
    } finally {
      this.granting.delete(grant.id);
    }
    this.leases.add(grant.id, grant.ttlSeconds);
    this.opts.broadcast?.({ type: "leases", changes: [{ id: grant.id, exists: true }] });
    return grant;
  }

  /** LeaseRevoke (and expiry): the lease's keys are deleted at one revision, which is returned. */
  async revoke(id: number): Promise<number> {
    // Writes that arrived first are ordered first (etcd: the revoke is one log entry after them),
    // so the lease's key set is current and our deletion sees their changes.
    this.backend.applyPending();
    const lease = this.leases.remove(id);
    if (!lease) throw new MergekvError("LeaseNotFound");
    this.opts.broadcast?.({ type: "leases", changes: [{ id, exists: false }] });
    // Queued now, ahead of any later grant of this id. A crash before the keys' deletion is
    // durable leaves them without a lease: restore() deletes them at the next start.
    const recordDeleted = this.log.deleteLease(id);
    const keys = [...lease.keys] as KeyString[];
    const rev = await (this.opts.revokeKeys && keys.length > 0 ? this.opts.revokeKeys(keys, id) : this.backend.deleteAuthored(keys));
    await recordDeleted;
    return rev;
  }

}
