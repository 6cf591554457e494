// What every test file shares: the server test/serve.py started, and small waiting helpers.
// No mocks at the seams: every test talks HTTP to that one real server, except the few that need
// answers no real server gives (a proxy's page, bytes split anywhere), which pass their own
// `fetch` to the client, the seam the client offers for it.
import assert from "node:assert/strict";

import { Client, type ClientOptions, nodeFetch } from "sandlot";

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run the tests with \`npm test\` (test/serve.py starts the server)`);
  return value;
}

export const URL = env("SANDLOT_TEST_URL");
export const API_KEY = env("SANDLOT_TEST_API_KEY");
export const QUOTA_KEY = env("SANDLOT_TEST_QUOTA_KEY");
export const MAX_SESSIONS = Number(env("SANDLOT_TEST_MAX_SESSIONS"));

/**
 * The transport under test. On Node the package uses `node:http` by itself (src/node.ts); the
 * suite runs a second time with SANDLOT_TEST_TRANSPORT=fetch, through the `fetch` every other
 * runtime uses, so both transports pass the same tests.
 */
export const TRANSPORT = process.env["SANDLOT_TEST_TRANSPORT"] === "fetch" ? "fetch" : "node:http";
/** The `fetch` the client under test uses, for tests that wrap it. */
export const baseFetch: typeof fetch = TRANSPORT === "fetch" ? globalThis.fetch : nodeFetch;
const transport: ClientOptions = TRANSPORT === "fetch" ? { fetch: globalThis.fetch } : {};

/** A client of the test server with the main key. */
export function client(options: ClientOptions = {}): Client {
  return new Client({ baseUrl: URL, apiKey: API_KEY, ...transport, ...options });
}

/** stdout, stderr, a display_data, the trailing expression's execute_result, then done. */
export const MIXED = "import sys\nprint('a')\nprint('b', file=sys.stderr)\ndisplay(3)\n4";
export const MIXED_EVENTS = ["stdout", "stderr", "output", "output", "done"];

/** A promise and the function that resolves it. */
export function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Wait until `condition()` holds, for at most `seconds`; whether it did. */
export async function waitUntil(condition: () => Promise<boolean> | boolean, seconds: number): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** No sandbox busy on the server: every live one is warm in the pool or belongs to a session. */
export async function idle(c: Client): Promise<boolean> {
  const h = await c.health();
  return h.sandboxes_alive === h.pool_ready + h.sessions;
}

/** The bytes 0..255, then pseudo-random bytes: every value, and more than one read's worth. */
export function binary(size: number): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(size);
  let x = 2463534242;
  for (let i = 0; i < size; i++) {
    if (i < 256) {
      data[i] = i;
      continue;
    }
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return data;
}
