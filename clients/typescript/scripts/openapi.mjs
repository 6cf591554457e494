#!/usr/bin/env node
// src/openapi.ts is generated from a live server's GET /openapi.json, so the SDK's types cannot
// drift from what the server says. `npm run openapi` regenerates it (test/serve.py starts a server);
// test/openapi.test.ts regenerates it in memory on every test run and fails on any difference.
//
//   node scripts/openapi.mjs --write [URL]   regenerate src/openapi.ts from the server at URL
//   node scripts/openapi.mjs --check [URL]   exit 1 if src/openapi.ts differs from what URL describes
//
// URL defaults to $SANDLOT_TEST_URL (set by test/serve.py), then http://127.0.0.1:8765.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";

export const TARGET = fileURLToPath(new URL("../src/openapi.ts", import.meta.url));
const HEADER = `// Generated from sandlot's GET /openapi.json by scripts/openapi.mjs: do not edit by hand.
// Regenerate with \`npm run openapi\`; the test run fails when this file and the server disagree.
`;

/** The TypeScript source openapi-typescript makes of the description served at `baseUrl`. */
export async function generate(baseUrl) {
  const response = await fetch(`${baseUrl.replace(/\/+$/, "")}/openapi.json`);
  if (!response.ok) throw new Error(`GET /openapi.json: HTTP ${response.status}`);
  const schema = await response.json();
  // The version changes with every release and says nothing about shapes; leave it out of the diff.
  schema.info.version = "(any)";
  // defaultNonNullable: a field with a default is always present in what the server sends (pydantic
  // writes every field), so results type `stdout: string`, not `stdout?: string`. The request
  // types this makes are not the SDK's options (those are written out in src/types.ts).
  const ast = await openapiTS(schema, { exportType: true, defaultNonNullable: true });
  return HEADER + astToString(ast);
}

async function main() {
  const [mode, url = process.env.SANDLOT_TEST_URL ?? "http://127.0.0.1:8765"] = process.argv.slice(2);
  if (mode !== "--write" && mode !== "--check") {
    console.error("usage: node scripts/openapi.mjs --write|--check [URL]");
    return 2;
  }
  const fresh = await generate(url);
  if (mode === "--write") {
    await writeFile(TARGET, fresh);
    console.log(`wrote ${TARGET} from ${url}/openapi.json`);
    return 0;
  }
  const current = await readFile(TARGET, "utf8").catch(() => "");
  if (current === fresh) return 0;
  console.error(`${TARGET} is out of date with ${url}/openapi.json: run \`npm run openapi\``);
  return 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main();
