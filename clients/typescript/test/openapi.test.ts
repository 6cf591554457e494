// src/openapi.ts must be what the live server's /openapi.json generates today: a route or field
// added on the server fails this test until `npm run openapi` regenerates the types.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

import { URL as SERVER } from "./helpers.js";

interface Generator {
  generate(baseUrl: string): Promise<string>;
  TARGET: string;
}

test("the generated types match the server's OpenAPI description", async () => {
  const script = new URL("../../scripts/openapi.mjs", import.meta.url).href;
  const { generate, TARGET } = await import(script) as Generator;
  const fresh = await generate(SERVER);
  const current = await readFile(TARGET, "utf8");
  if (current !== fresh) {
    const a = current.split("\n");
    const b = fresh.split("\n");
    const line = a.findIndex((text, i) => text !== b[i]);
    assert.fail(`src/openapi.ts differs from ${SERVER}/openapi.json from line ${line + 1} ` +
      `(${JSON.stringify(a[line])} vs ${JSON.stringify(b[line])}): run \`npm run openapi\` in clients/typescript`);
  }
});
