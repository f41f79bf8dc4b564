/*
 * parseServeFlags for the auth token flags: --auth-token is handed to the
 * server as given (checked, with its key files, when the server is made);
 * --auth-token-ttl is whole seconds, as in etcd.
 */
import { parseServeFlags } from "../src/cli";
import { MergekvServer } from "../src/server";
import { MergekvError } from "../src/errors";

test("defaults: simple tokens living 300 s; both flags are taken", () => {
  const defaults = parseServeFlags([]);
  expect([defaults.authToken, defaults.authTokenTtlMs]).toEqual(["simple", 300_000]);
  const opts = parseServeFlags(["--auth-token", "jwt,sign-method=ES256,priv-key=/k.pem", "--auth-token-ttl", "60"]);
  expect([opts.authToken, opts.authTokenTtlMs]).toEqual(["jwt,sign-method=ES256,priv-key=/k.pem", 60_000]);
});

test("a bad --auth-token-ttl is refused; a bad --auth-token when the server is made, before anything opens", () => {
  for (const ttl of ["0", "-5", "5m", "1.5"]) {
    expect(() => parseServeFlags([`--auth-token-ttl=${ttl}`])).toThrow(new MergekvError("InvalidArgument", `--auth-token-ttl must be a positive integer, got ${JSON.stringify(ttl)}`));
  }
  const opts = parseServeFlags(["--auth-token", "jwt,sign-method=RS256,priv-key=/no/such/key.pem", "--data-dir", "/no/such/dir"]);
  expect(() => new MergekvServer(opts)).toThrow(/^--auth-token: cannot read priv-key \/no\/such\/key\.pem: ENOENT/);
});
