// Rebuild the playground's vendored libraries from the pinned packages in package-lock.json:
//
//     cd scripts/ui-vendor && npm ci --ignore-scripts && node build.mjs
//
// Writes src/sandlot/ui/vendor/: codemirror.js (CodeMirror 6 + Lezer, bundled and minified by
// esbuild from editor-entry.js), marked.js and dompurify.js (each package's own ES-module build,
// copied byte for byte), VERSIONS.json (every package whose code ships, with its version and
// licence) and THIRD_PARTY_LICENSES.txt (their licence texts). The output is committed, so that
// neither a user nor CI needs node; tests/test_ui.py checks VERSIONS.json against the lockfile.
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "src", "sandlot", "ui", "vendor");
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: [join(here, "editor-entry.js")], bundle: true, format: "esm", minify: true,
  legalComments: "eof", target: "es2022", outfile: join(out, "codemirror.js"), metafile: true,
});

// The packages whose code is in the bundle, read from esbuild's own record of its inputs.
const bundled = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (match) bundled.add(match[1]);
}
const copied = { marked: ["lib/marked.esm.js", "marked.js"], dompurify: ["dist/purify.es.mjs", "dompurify.js"] };
for (const [name, [from, to]] of Object.entries(copied)) copyFileSync(join(here, "node_modules", name, from), join(out, to));

const packages = {};
const licences = [];
for (const name of [...bundled, ...Object.keys(copied)].sort()) {
  const meta = lock.packages[`node_modules/${name}`];
  const file = copied[name] ? copied[name][1] : "codemirror.js";
  packages[name] = { version: meta.version, license: meta.license, file, ...(copied[name] ? { from: copied[name][0] } : {}) };
  for (const licenceFile of ["LICENSE", "LICENSE.md", "LICENSE.txt"]) {
    const path = join(here, "node_modules", name, licenceFile);
    if (existsSync(path)) {
      licences.push(`==== ${name} ${meta.version} (${meta.license}) ====\n\n${readFileSync(path, "utf8").trim()}\n`);
      break;
    }
  }
}
writeFileSync(join(out, "VERSIONS.json"), JSON.stringify({ built_with: `esbuild ${lock.packages["node_modules/esbuild"].version}`, packages }, null, 2) + "\n");
writeFileSync(join(out, "THIRD_PARTY_LICENSES.txt"), licences.join("\n"));
console.log(`vendored ${Object.keys(packages).length} packages into ${out}`);
