// Network through the server's egress proxy (docs/egress.md), against the real server: test/serve.py allows
// 127.0.0.1:<origin port> (a local HTTP server standing in for the internet) and nothing else; a second local
// server's port is not allowed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { InvalidRequestError, type NetworkConnection, type SessionNetwork } from "sandlot";

import { client } from "./helpers.js";

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run the tests with \`npm test\` (test/serve.py starts the server)`);
  return value;
}

const ORIGIN = new URL(env("SANDLOT_TEST_ORIGIN_URL"));
const OTHER = new URL(env("SANDLOT_TEST_OTHER_URL"));
const ALLOWED = `127.0.0.1:${ORIGIN.port}`;

/** Python that fetches each URL and prints the statuses (or the error's name) as JSON. */
function fetching(...urls: URL[]): string {
  return [
    "import json, urllib.request, urllib.error",
    "out = []",
    `for url in ${JSON.stringify(urls.map((u) => new URL("/ts", u).href))}:`,
    "    try:",
    "        out.append(urllib.request.urlopen(url, timeout=10).status)",
    "    except urllib.error.HTTPError as e:",
    "        out.append(e.code)",
    "    except OSError as e:",
    "        out.append(type(e).__name__)",
    "print(json.dumps(out))",
  ].join("\n");
}

function statuses(stdout: string): unknown {
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "null");
}

describe("network", () => {
  test("true is everything the server allows; the result lists each connection, typed", async () => {
    const result = await client().execute(fetching(ORIGIN, OTHER), { network: true });
    assert.equal(result.status, "ok", result.stderr);
    assert.deepEqual(statuses(result.stdout), [200, 403]);
    const [reached, refused]: NetworkConnection[] = result.network;
    assert.ok(reached && refused);
    assert.deepEqual([reached.host, reached.port, reached.allowed], ["127.0.0.1", Number(ORIGIN.port), true]);
    assert.ok(reached.bytes_received > 0);
    assert.deepEqual([refused.port, refused.allowed], [Number(OTHER.port), false]);
    assert.match(refused.reason ?? "", /not on the allow list/);
  });

  test("a list asks for a subset; beyond the server's list is refused; without network there is none", async () => {
    const c = client();
    const listed = await c.execute(fetching(ORIGIN), { network: [ALLOWED] });
    assert.deepEqual(statuses(listed.stdout), [200]);
    await assert.rejects(c.execute("1", { network: [`127.0.0.1:${OTHER.port}`] }), (error: unknown) =>
      error instanceof InvalidRequestError && /beyond what this server allows/.test(error.message));
    const none = await c.execute(fetching(ORIGIN), { network: false });
    assert.equal(none.status, "ok");
    assert.notDeepEqual(statuses(none.stdout), [200]); // no proxy and no TCP sockets: the fetch fails
    assert.deepEqual(none.network, []);
    await assert.rejects(async () => c.execute("1", { network: ALLOWED as unknown as string[] }), TypeError);
  });

  test("a session keeps its network for every cell, and its info says what it has", async () => {
    const c = client();
    const session = await c.createSession({ network: [ALLOWED] });
    try {
      const policy: SessionNetwork | null | undefined = (await session.info()).network;
      assert.deepEqual(policy, { allow: [ALLOWED], dropped: [] });
      for (let cell = 0; cell < 2; cell++) {
        const result = await session.execute(fetching(ORIGIN));
        assert.deepEqual(statuses(result.stdout), [200]);
        assert.deepEqual(result.network.map((n) => n.allowed), [true]);
      }
    } finally {
      await session.close();
    }
    const plain = await c.createSession();
    try {
      assert.equal((await plain.info()).network ?? null, null);
    } finally {
      await plain.close();
    }
  });

  test("batch items take it; an item for a session has the session's", async () => {
    const c = client();
    const results = await c.batch([{ code: fetching(ORIGIN), network: true }, "print(2)",
                                   { code: fetching(ORIGIN), network: [ALLOWED] }]);
    assert.deepEqual(results.map((r) => r.network.length), [1, 0, 1]);
    assert.deepEqual(statuses(results[2]?.stdout ?? ""), [200]);
    const session = await c.createSession();
    try {
      await assert.rejects(c.batch([{ code: "1", session_id: session.id, network: true }]), (error: unknown) =>
        error instanceof InvalidRequestError && /the session's network/.test(error.message));
    } finally {
      await session.close();
    }
  });
});
