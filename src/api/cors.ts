/**
 * etcd's --cors: the origins a browser may call the client URLs' HTTP side
 * (the gateway, /health, /metrics, /version) from. etcd 3.4 allows every
 * origin by default and adds its three headers to every such answer; an
 * OPTIONS request (a browser's preflight) is answered 200 and nothing else.
 */
const ALLOW_METHODS = "POST, GET, OPTIONS, PUT, DELETE";
const ALLOW_HEADERS = "accept, content-type, authorization";

export class Cors {
  /** `origins`: as given to --cors; "*" allows any. */
  constructor(private readonly origins: readonly string[]) {}

  /** The headers for a request from `origin` (none if it is not allowed). */
  headers(origin: string | undefined): Record<string, string> {
    const allowed = this.origins.includes("*") ? "*" : origin !== undefined && this.origins.includes(origin) ? origin : undefined;
    if (allowed === undefined) return {};
    return { "access-control-allow-methods": ALLOW_METHODS, "access-control-allow-origin": allowed, "access-control-allow-headers": ALLOW_HEADERS };
  }
}
