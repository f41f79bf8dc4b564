import * as path from "node:path";
import { run } from "./etcdctl";

export interface TestCerts { dir: string; ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string }

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in `dir`. */
export async function makeCerts(dir: string): Promise<TestCerts> {
  const f = (name: string) => path.join(dir, name);
  const ssl = async (...args: string[]) => {
    const r = await run("openssl", args);
    if (r.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
  };
  await ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mergekv-test-ca", "-keyout", f("ca.key"), "-out", f("ca.crt"));
  for (const who of ["server", "client"]) {
    await ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=mergekv-test-${who}`, "-keyout", f(`${who}.key`), "-out", f(`${who}.csr`));
    const ext = f(`${who}.ext`);
    await require("node:fs").promises.writeFile(ext, who === "server" ? "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n" : "extendedKeyUsage=clientAuth\n");
    await ssl("x509", "-req", "-in", f(`${who}.csr`), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f(`${who}.crt`));
  }
  return { dir, ca: f("ca.crt"), serverCert: f("server.crt"), serverKey: f("server.key"), clientCert: f("client.crt"), clientKey: f("client.key") };
}
