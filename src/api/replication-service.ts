/**
 * mergekv's Replication service (no etcd counterpart; `mergekv replication`
 * calls it): the replication factors of a running server. Status is public,
 * as etcd's Status and MemberList; Set needs root once auth is on.
 *
 * Internal replication: how many frontends must have applied a write before
 * it is answered (1..frontends). A change lasts until the server stops;
 * --internal-replication sets it at start. External replication: how many
 * peer servers must hold a write durably; a single server has no peers, so
 * only 0 is accepted until peers exist.
 */
import { MergekvError } from "../errors";
import { ServiceImplementation } from "./grpc-server";
import { Answer, rootUnary, unary } from "./rpc";
import { Wire } from "./convert";
import type { Engine } from "../server";

/** Peer servers a write is replicated to: none until peers exist (REDESIGN.md, "Known limits"). */
const PEERS = 0;

export function replicationService(engine: Engine): ServiceImplementation {
  const status = (): Answer => ({
    revision: engine.backend.revision,
    body: {
      internal: engine.backend.replication.factor,
      frontends: engine.pool.size,
      external: 0,
      peers: PEERS,
      applied: engine.pool.acknowledged().map((f, index) => ({ index, actor: f.actor, revision: String(f.revision) })),
    },
  });
  return {
    Status: unary(engine, async () => status(), { public: true, readOnly: true }),
    Set: rootUnary(engine, async (req: Wire) => {
      const internal = Number(req.internal ?? 0);
      const external = Number(req.external ?? 0);
      if (external > PEERS) {
        throw new MergekvError("InvalidArgument", `mergekv: external replication ${external} needs ${external} peer servers to hold each write; this server has ${PEERS}`);
      }
      if (internal !== 0) engine.pool.setInternalReplication(internal);
      return status();
    }),
  };
}
