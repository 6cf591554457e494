// One-shot runs, batches and the operations routes, against the real server.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import * as sandlot from "sandlot";
import { InvalidRequestError, NotFoundError, VERSION } from "sandlot";

import { API_KEY, binary, client, MIXED } from "./helpers.js";

describe("the package", () => {
  test("exports exactly its public surface, and its version is package.json's", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal(VERSION, pkg.version);
    // A new export is a decision: add it here and to docs/typescript.md.
    assert.deepEqual(Object.keys(sandlot).sort(), [
      "AuthenticationError", "CapacityError", "Client", "ClosedError", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT",
      "EventStream", "InvalidRequestError", "NotFoundError", "ProtocolError", "RequestTimeoutError", "SandboxError",
      "SandlotError", "ServerStream", "Session", "SessionFiles", "SetupError", "SpawnError", "TooLargeError",
      "UnavailableError", "UpstreamError", "UpstreamTimeoutError", "VERSION", "agentExtra", "agentStep",
      "nodeFetch"]); // the last from the Node entry point only
    assert.deepEqual(Object.keys(await import("sandlot/ai")).sort(),
                     ["DEFAULT_MAX_CHARS", "IMAGE_TYPES", "describeImage", "modelContent", "resultParts", "sandlotTools"]);
  });

  test("a client says where it points, never its key", () => {
    const text = String(client());
    assert.match(text, /auth=yes/);
    assert.ok(!text.includes(API_KEY));
  });
});

describe("execute", () => {
  test("returns a typed result", async () => {
    const result = await client().execute("print(6 * 7)");
    assert.equal(result.status, "ok");
    assert.equal(result.stdout, "42\n");
    assert.equal(result.stderr, "");
    assert.match(result.id, /^exe_/);
    assert.deepEqual(result.outputs, [{ output_type: "stream", name: "stdout", text: "42\n" }]);
    assert.equal(result.error, null);
    assert.equal(typeof result.duration_ms, "number");
    assert.equal(typeof result.usage.cpu_ms, "number");
    assert.equal(result.truncated, false);
  });

  test("rich outputs come back as nbformat objects, in order", async () => {
    const result = await client().execute(MIXED);
    assert.deepEqual(result.outputs.map((o) => o.output_type), ["stream", "stream", "display_data", "execute_result"]);
    const [, , shown, value] = result.outputs;
    assert.ok(shown?.output_type === "display_data" && value?.output_type === "execute_result");
    assert.deepEqual(shown.data, { "text/plain": "3" });
    assert.deepEqual(value.data, { "text/plain": "4" });
  });

  test("an exception in the code is data, not a thrown error", async () => {
    const result = await client().execute("1 / 0");
    assert.equal(result.status, "error");
    assert.equal(result.error?.ename, "ZeroDivisionError");
    assert.ok(result.error?.traceback.some((line) => line.includes("ZeroDivisionError")));
  });

  test("files (text and binary) and env reach the run", async () => {
    const data = binary(100_000);
    const code = "import os, hashlib\nprint(open('in/t.txt').read() + os.environ['GREETING'])\n" +
      "print(hashlib.sha256(open('in/b.bin', 'rb').read()).hexdigest())";
    const result = await client().execute(code, { files: { "in/t.txt": "é", "in/b.bin": data }, env: { GREETING: "hi" } });
    const digest = createHash("sha256").update(data).digest("hex");
    assert.equal(result.stdout, `éhi\n${digest}\n`);
  });

  test("a run's own timeout is data", async () => {
    const result = await client().execute("while True: pass", { timeout: 0.5 });
    assert.equal(result.status, "timeout");
  });

  test("a run timeout longer than the client's timeout is waited for", async () => {
    const result = await client({ timeout: 0.5 }).execute("import time\ntime.sleep(1)\nprint('slept')", { timeout: 5 });
    assert.equal(result.stdout, "slept\n");
  });
});

describe("batch", () => {
  test("runs items in order, sessions' items in their session", async () => {
    const c = client();
    const session = await c.createSession();
    try {
      const results = await c.batch(["print('one')", { code: "y = 5", session_id: session.id },
                                     { code: "y * 2", session_id: session.id }, { code: "1 / 0", timeout: 5 }]);
      assert.deepEqual(results.map((r) => r.status), ["ok", "ok", "ok", "error"]);
      assert.equal(results[0]?.stdout, "one\n");
      assert.deepEqual(results[2]?.outputs[0], { output_type: "execute_result", execution_count: 2,
                                                 data: { "text/plain": "10" }, metadata: {} });
      const y = await session.execute("y");
      assert.deepEqual(y.outputs[0]?.output_type === "execute_result" && y.outputs[0].data, { "text/plain": "5" });
    } finally {
      await session.close();
    }
    await assert.rejects(c.batch([{ code: "1", session_id: session.id }]), NotFoundError);
  });

  test("streams each result in item order", async () => {
    const c = client();
    const got: Array<[number, string]> = [];
    for await (const { index, result } of c.batchStream(["print('a')", "import time; time.sleep(0.3); print('b')", "print('c')"])) {
      got.push([index, result.stdout]);
    }
    assert.deepEqual(got, [[0, "a\n"], [1, "b\n"], [2, "c\n"]]);
  });
});

describe("operations", () => {
  test("health", async () => {
    const health = await client().health();
    assert.equal(health.status, "ok");
    assert.equal(typeof health.version, "string");
    assert.equal(typeof health.pool_ready, "number");
  });
});

describe("environments", () => {
  test("a run and a session name their environment; an unknown one is refused naming the known ones", async () => {
    const c = client();
    assert.equal((await c.execute("print(1)", { environment: "default" })).stdout, "1\n");
    await assert.rejects(c.execute("1", { environment: "nope" }), (error: unknown) =>
      error instanceof InvalidRequestError && /unknown environment 'nope'; this server has: default/.test(error.message));
    const session = await c.createSession({ environment: "default" });
    try {
      assert.equal((await session.info()).environment, "default");
    } finally {
      await session.close();
    }
    await assert.rejects(c.createSession({ environment: "nope" }), InvalidRequestError);
  });
});
