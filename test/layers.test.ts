/**
 * Dependencies point one way, `api → frontend → backend → persist`
 * (REDESIGN.md): a module imports from its own layer, the layers below it,
 * and the shared `errors` and `metrics`, never from a layer above.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const SRC = path.join(__dirname, "..", "src");
const LAYERS = ["persist", "backend", "frontend", "api"];
const SHARED = new Set(["errors", "metrics"]);

/** Every relative import of a file, resolved to a path under src without its extension. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:from|import|require)\s*\(?\s*"(\.[^"]+)"/g)].map((m) => m[1]);
  return specs.map((s) => path.relative(SRC, path.resolve(path.dirname(file), s)));
}

test("persist, backend and frontend import nothing from a layer above them", () => {
  const wrong: string[] = [];
  let checked = 0;
  for (const [rank, layer] of LAYERS.entries()) {
    if (layer === "api") continue; // the top layer may import any
    for (const name of fs.readdirSync(path.join(SRC, layer)).filter((f) => f.endsWith(".ts"))) {
      for (const target of importsOf(path.join(SRC, layer, name))) {
        checked++;
        const [top] = target.split(path.sep);
        const allowed = SHARED.has(top) || (LAYERS.includes(top) && LAYERS.indexOf(top) <= rank);
        if (!allowed) wrong.push(`${layer}/${name} imports ${target}`);
      }
    }
  }
  expect(checked).toBeGreaterThan(50);
  expect(wrong).toEqual([]);
});
