// The Node side of bench_typescript.py: times execute("print(1)") with the TypeScript SDK when
// asked on stdin, and answers with the latencies on stdout. Faces: "sdk" (the package as Node
// loads it: its node:http transport), "sdk-fetch" (the package on Node's fetch, the transport
// every other runtime uses) and "fetch" (a bare fetch POST, no SDK).
//
//   node benchmarks/bench_typescript.mjs URL
//   stdin:  "<face> <count>" | "quit", one per line
//   stdout: one JSON line per request: {"face": "sdk", "ms": [..], "failed": 0, "cpuMs": 7.5}
//   (cpuMs: this process's CPU time over the whole burst)
import { createInterface } from "node:readline";

import { Client } from "../clients/typescript/dist/node.js";

const [url] = process.argv.slice(2);
const client = new Client({ baseUrl: url });
const onFetch = new Client({ baseUrl: url, fetch: globalThis.fetch });
const body = JSON.stringify({ code: "print(1)" });

const faces = {
  sdk: async () => (await client.execute("print(1)")).stdout === "1\n",
  "sdk-fetch": async () => (await onFetch.execute("print(1)")).stdout === "1\n",
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
  const cpu = process.cpuUsage();
  for (let i = 0; i < Number(count); i++) {
    const started = performance.now();
    const ok = await run();
    ms.push(performance.now() - started);
    if (!ok) failed++;
  }
  const used = process.cpuUsage(cpu);
  process.stdout.write(JSON.stringify({ face, ms, failed, cpuMs: (used.user + used.system) / 1000 }) + "\n");
}
