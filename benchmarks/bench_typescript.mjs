// The Node side of bench_typescript.py: times execute("print(1)") with the TypeScript SDK (and
// with bare fetch, for context) when asked on stdin, and answers with the latencies on stdout.
//
//   node benchmarks/bench_typescript.mjs URL
//   stdin:  "sdk 8" | "fetch 8" | "quit", one per line
//   stdout: one JSON line per request: {"face": "sdk", "ms": [..], "failed": 0}
import { createInterface } from "node:readline";

import { Client } from "../clients/typescript/dist/index.js";

const [url] = process.argv.slice(2);
const client = new Client({ baseUrl: url });
const body = JSON.stringify({ code: "print(1)" });

const faces = {
  sdk: async () => (await client.execute("print(1)")).stdout === "1\n",
  fetch: async () => {
    const response = await fetch(`${url}/v1/execute`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
    return response.ok && (await response.json()).stdout === "1\n";
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  const [face, count] = line.trim().split(/\s+/);
  if (face === "quit") break;
  const run = faces[face];
  if (!run) throw new Error(`unknown face ${face}`);
  const ms = [];
  let failed = 0;
  for (let i = 0; i < Number(count); i++) {
    const started = performance.now();
    const ok = await run();
    ms.push(performance.now() - started);
    if (!ok) failed++;
  }
  process.stdout.write(JSON.stringify({ face, ms, failed }) + "\n");
}
