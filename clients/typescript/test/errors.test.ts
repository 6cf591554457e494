// Each error class: from the real server where it can say so, and through the client's `fetch`
// seam for answers only something in front of sandlot gives (a proxy's page, an odd status).
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, test } from "node:test";

import {
  AuthenticationError, CapacityError, Client, ClosedError, InvalidRequestError, NotFoundError, ProtocolError,
  RequestTimeoutError, SandboxError, SandlotError, SetupError, SpawnError, TooLargeError, UnavailableError,
  UpstreamError, UpstreamTimeoutError,
} from "sandlot";

import { client, idle, MAX_SESSIONS, QUOTA_KEY, waitUntil } from "./helpers.js";

describe("errors from the server", () => {
  test("a wrong or missing key is AuthenticationError (401); /healthz stays open", async () => {
    for (const apiKey of ["wrong-key", ""]) {
      const c = client({ apiKey });
      await assert.rejects(c.execute("print(1)"), (error: unknown) =>
        error instanceof AuthenticationError && error.status === 401 && error.type === "unauthorized" &&
        /API key/.test(error.message));
      assert.equal((await c.health()).status, "ok");
    }
  });

  test("an unknown session is NotFoundError (404)", async () => {
    await assert.rejects(client().getSession("ses_nope"), (error: unknown) =>
      error instanceof NotFoundError && error.status === 404 && error.message.includes("ses_nope"));
  });

  test("a bad timeout is InvalidRequestError (400)", async () => {
    await assert.rejects(client().execute("print(1)", { timeout: -1 }), (error: unknown) =>
      error instanceof InvalidRequestError && error.status === 400 && /timeout/.test(error.message));
  });

  test("code over 1 MiB is TooLargeError (413)", async () => {
    await assert.rejects(client().execute("#".repeat(1024 * 1024 + 1)), (error: unknown) =>
      error instanceof TooLargeError && error.status === 413);
  });

  test("the session quota is CapacityError (429) with retryAfter from Retry-After", async () => {
    const c = client({ apiKey: QUOTA_KEY }); // its own key: quotas are per key
    const opened = [];
    try {
      for (let i = 0; i < MAX_SESSIONS; i++) opened.push(await c.createSession());
      await assert.rejects(c.createSession(), (error: unknown) =>
        error instanceof CapacityError && error.status === 429 && error.retryAfter === 5);
    } finally {
      await Promise.all(opened.map((s) => s.close()));
    }
    assert.deepEqual(await c.listSessions(), []);
  });

  test("the client's own timeout is RequestTimeoutError, one way of being unavailable", async () => {
    const started = Date.now();
    await assert.rejects(client({ timeout: 0.3 }).execute("import time\ntime.sleep(3)"), (error: unknown) =>
      error instanceof RequestTimeoutError && error instanceof UnavailableError && error.status === undefined);
    assert.ok(Date.now() - started < 2500);
  });

  test("an unreachable server is UnavailableError", async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });
    const c = client({ baseUrl: `http://127.0.0.1:${port}` });
    await assert.rejects(c.health(), (error: unknown) =>
      error instanceof UnavailableError && !(error instanceof RequestTimeoutError) &&
      /could not reach the server/.test(error.message) && error.cause !== undefined);
  });

  test("an aborted run rejects with the abort's reason, not a sandlot error, and stops on the server", async () => {
    const c = client();
    assert.ok(await waitUntil(() => idle(c), 10), "the server is idle before the test");
    const controller = new AbortController();
    const running = c.execute("import time\ntime.sleep(12)", { signal: controller.signal });
    assert.ok(await waitUntil(async () => !(await idle(c)), 5), "the run is busy");
    controller.abort(new Error("stop"));
    await assert.rejects(running, (error: unknown) => error instanceof Error && error.message === "stop" &&
      !(error instanceof SandlotError));
    assert.ok(await waitUntil(() => idle(c), 5), "the run's sandbox is gone soon after the abort");
  });
});

/** A client whose server answers every request with `status`, `body` and `headers`. */
function answering(status: number, body: string, headers: Record<string, string> = {}): Client {
  return new Client({ baseUrl: "http://sandlot.invalid", fetch: async () => new Response(body, { status, headers }) });
}

const contract = (type: string, message = "m") => JSON.stringify({ error: { type, message } });

describe("error answers map onto the tree", () => {
  const cases: Array<[number, string, typeof SandlotError]> = [
    [500, contract("spawn_error", "no zygote"), SpawnError], // refined, still a SandboxError
    [500, contract("internal_error"), SandboxError],
    [500, contract("protocol_error"), ProtocolError],
    [409, contract("closed"), ClosedError],
    [503, contract("setup_error"), SetupError], // a class that carries that very status
    [503, contract("unavailable"), UnavailableError],
    [404, contract("too_large"), NotFoundError], // the status wins over a word that does not fit it
    [502, contract("upstream_error"), UpstreamError],
    [504, contract("upstream_timeout"), UpstreamTimeoutError],
    [502, "<html>Bad Gateway</html>", UnavailableError], // a proxy's page
    [418, "", InvalidRequestError],
    [507, "", SandboxError],
  ];
  for (const [status, body, expected] of cases) {
    test(`${status} ${body || "(empty)"} is ${expected.name}`, async () => {
      await assert.rejects(answering(status, body).health(), (error: unknown) =>
        error instanceof SandlotError && error.constructor === expected && error.status === status);
    });
  }

  test("a proxy's page is described briefly", async () => {
    await assert.rejects(answering(502, "<html>Bad Gateway</html>").health(), (error: unknown) =>
      error instanceof UnavailableError && /HTTP 502.*<html>Bad Gateway/.test(error.message));
  });

  test("Retry-After in seconds or as an HTTP date", async () => {
    await assert.rejects(answering(429, contract("capacity"), { "Retry-After": "7" }).health(), (error: unknown) =>
      error instanceof CapacityError && error.retryAfter === 7);
    const later = new Date(Date.now() + 30_000).toUTCString();
    await assert.rejects(answering(429, contract("capacity"), { "Retry-After": later }).health(), (error: unknown) =>
      error instanceof CapacityError && error.retryAfter > 25 && error.retryAfter <= 30);
    await assert.rejects(answering(429, contract("capacity")).health(), (error: unknown) =>
      error instanceof CapacityError && error.retryAfter === 1);
  });

  test("an answer that is not sandlot's is a SandlotError that says so", async () => {
    await assert.rejects(answering(200, "<html>a login page</html>").execute("1"), (error: unknown) =>
      error?.constructor === SandlotError && /cannot read/.test((error as Error).message));
    await assert.rejects(answering(200, JSON.stringify({ hello: 1 })).execute("1"), (error: unknown) =>
      error?.constructor === SandlotError && /cannot read/.test((error as Error).message));
  });

  test("inside a stream the word decides", async () => {
    const stream = (body: string) => new Client({
      baseUrl: "http://sandlot.invalid",
      fetch: async () => new Response(`event: error\ndata: ${body}\n\n`, { headers: { "Content-Type": "text/event-stream" } }),
    });
    await assert.rejects(stream(contract("capacity")).execute("1", { onStdout: () => undefined }), CapacityError);
    await assert.rejects(stream(JSON.stringify({ error: { type: "something_new" } })).execute("1", { onEvent: () => undefined }),
                         (error: unknown) => error?.constructor === SandboxError);
  });
});
