/**
 * gRPC's standard health service (grpc.health.v1.Health), which etcd 3.4
 * registers next to its own with the empty service name SERVING: what
 * gRPC health probes (Kubernetes' grpc probe, grpc_health_probe) and
 * health-checking gRPC clients call. As grpc-go's implementation answers:
 * Check of another name is NOT_FOUND "unknown service"; Watch sends the
 * status at once (SERVICE_UNKNOWN for another name) and stays open. No
 * token is needed, as on etcd, whose auth covers its own services only.
 */
import { setMaxListeners } from "node:events";
import { MergekvError } from "../errors";
import { RpcContext, toStatus, unary, whenClosed } from "./rpc";
import { ServerCall } from "./grpc-call";
import { ServiceImplementation } from "./grpc-server";

/** The one service name this server reports on: "" stands for all of etcd's. */
const ALL_SERVICES = "";

/** `stopping`: aborted when the server shuts down; open Watch streams end with UNAVAILABLE then. */
export function healthService(ctx: RpcContext, stopping?: AbortSignal): ServiceImplementation {
  if (stopping) setMaxListeners(0, stopping); // one listener per open Watch, removed when it closes
  return {
    Check: unary(ctx, async (req) => {
      if (String(req.service ?? "") !== ALL_SERVICES) throw new MergekvError("UnknownService");
      return { revision: 0, body: { status: "SERVING" } };
    }, { public: true, readOnly: true }),
    Watch: (call: ServerCall) => {
      const req = call.request as { service?: string };
      call.write({ status: String(req.service ?? "") === ALL_SERVICES ? "SERVING" : "SERVICE_UNKNOWN" });
      const stop = () => call.fail(toStatus(new MergekvError("Unavailable")));
      stopping?.addEventListener("abort", stop, { once: true });
      whenClosed(call).addEventListener("abort", () => stopping?.removeEventListener("abort", stop), { once: true });
    },
  };
}
