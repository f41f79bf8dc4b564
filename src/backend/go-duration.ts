/** Go's duration syntax, as etcd's flags and options take it ("5m", "1h30m", "1.5s", "300ms", "0"). */

/** Units of a Go duration, in ms. */
const GO_DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const GO_DURATION_TERM = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** A Go duration ("5m", "1h30m", "1.5s", "300ms", "0") in ms, or undefined if it is not one. */
export function parseGoDuration(text: string): number | undefined {
  const sign = text.startsWith("-") ? -1 : 1;
  const body = text.replace(/^[+-]/, "");
  if (body === "0") return 0;
  if (body === "") return undefined;
  let ms = 0;
  GO_DURATION_TERM.lastIndex = 0;
  while (GO_DURATION_TERM.lastIndex < body.length) {
    const m = GO_DURATION_TERM.exec(body);
    if (!m) return undefined;
    ms += Number(m[1]) * GO_DURATION_UNITS_MS[m[2]];
  }
  return sign * ms;
}
