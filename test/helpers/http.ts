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

/** A POST over an HTTP/2 session (not gRPC: a plain content type); resolves with the status and body. */
export function http2Post(session: http2.ClientHttp2Session, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
    let status = 0;
    let text = "";
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("data", (d) => (text += d));
    req.on("end", () => resolve({ status, body: text }));
    req.on("error", reject);
    req.end(body);
  });
}
