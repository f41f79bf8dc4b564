import * as http2 from "node:http2";

/** A plain GET over an HTTP/2 session; resolves with the body. */
export function http2Get(session: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":path": path });
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}
