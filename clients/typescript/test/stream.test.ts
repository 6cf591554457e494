// Streaming runs against the real server: event order and types, callbacks, and that stopping
// early (break, close(), an AbortSignal) cancels the run on the server.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ClosedError, NotFoundError, type StreamEvent, TooLargeError } from "sandlot";

import { baseFetch, client, idle, MIXED, MIXED_EVENTS, signal, waitUntil } from "./helpers.js";

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const seen: StreamEvent[] = [];
  for await (const event of events) seen.push(event);
  return seen;
}

describe("streaming", () => {
  test("an iterator yields typed events in order, done last", async () => {
    const events = await collect(client().stream(MIXED));
    assert.deepEqual(events.map((e) => e.event), MIXED_EVENTS);
    const [stdout, stderr, display, value, done] = events;
    assert.deepEqual(stdout, { event: "stdout", data: { output_type: "stream", name: "stdout", text: "a\n" } });
    assert.deepEqual(stderr, { event: "stderr", data: { output_type: "stream", name: "stderr", text: "b\n" } });
    assert.ok(display?.event === "output" && display.data.output_type === "display_data");
    assert.ok(value?.event === "output" && value.data.output_type === "execute_result");
    assert.ok(done?.event === "done");
    assert.equal(done.data.status, "ok");
    assert.deepEqual(done.data.outputs.at(-1), value.data);
  });

  test("callbacks are called in order, and the result is the done event's", async () => {
    const calls: string[] = [];
    const kinds: string[] = [];
    const result = await client().execute(MIXED, {
      onStdout: (text) => void calls.push(`stdout:${text}`),
      onStderr: (text) => void calls.push(`stderr:${text}`),
      onOutput: (output) => void calls.push(`output:${output.output_type}`),
      onEvent: async (event) => {
        await new Promise((r) => setTimeout(r, 1)); // an async callback is awaited before reading on
        kinds.push(event.event);
      },
    });
    assert.deepEqual(calls, ["stdout:a\n", "stderr:b\n", "output:display_data", "output:execute_result"]);
    assert.deepEqual(kinds, MIXED_EVENTS);
    assert.equal(result.stdout, "a\n");
    assert.equal(result.stderr, "b\n");
  });

  test("a user exception streams as an error event, then done", async () => {
    const errors: string[] = [];
    const result = await client().execute("print('x')\n1 / 0", { onError: (e) => void errors.push(e.ename) });
    assert.deepEqual(errors, ["ZeroDivisionError"]);
    assert.equal(result.status, "error");
    const events = await collect(client().stream("print('x')\n1 / 0"));
    assert.deepEqual(events.map((e) => e.event), ["stdout", "error", "done"]);
  });

  test("events arrive while the run goes on", async () => {
    // The cell cannot finish until we answer its first line: only a real stream gets that far.
    const c = client();
    const session = await c.createSession();
    try {
      const code = "import os, time\nprint('waiting', flush=True)\nwhile not os.path.exists('go'):\n" +
        "    time.sleep(0.02)\nprint('released')";
      const events = session.stream(code, { timeout: 10 });
      const first = await events.next();
      assert.ok(!first.done && first.value.event === "stdout" && first.value.data.text === "waiting\n");
      await session.files.upload("go", "");
      const rest = await collect(events);
      assert.deepEqual(rest.map((e) => e.event), ["stdout", "done"]);
      assert.ok(rest[1]?.event === "done" && rest[1].data.stdout === "waiting\nreleased\n");
    } finally {
      await session.close();
    }
  });

  test("a refused stream throws its status's error", async () => {
    const huge = "x = 1\n".repeat(200_000); // over the 1 MiB code limit
    await assert.rejects(collect(client().stream(huge)), TooLargeError);
    await assert.rejects(client().execute(huge, { onStdout: () => undefined }), TooLargeError);
  });
});

describe("a disconnect cancels the run", () => {
  test("leaving a one-shot stream early kills its sandbox", async () => {
    const c = client();
    assert.ok(await waitUntil(() => idle(c), 10), "the server is idle before the test");
    for await (const event of c.stream("import time\nprint('go', flush=True)\ntime.sleep(12)")) {
      assert.equal(event.event, "stdout");
      assert.equal(await idle(c), false, "the run's sandbox is busy while it runs");
      break;
    }
    // Without the cancel the sandbox would stay busy for 12 s more.
    assert.ok(await waitUntil(() => idle(c), 5), "the run's sandbox is gone soon after the disconnect");
  });

  test("leaving a session stream early interrupts the cell; the session's state is kept", async () => {
    const c = client();
    const session = await c.createSession();
    try {
      await session.execute("kept = 41");
      const events = session.stream("import time\nprint('go', flush=True)\ntime.sleep(10)\nset_late = True",
                                    { timeout: 12 });
      const first = await events.next();
      assert.ok(!first.done && first.value.event === "stdout");
      await events.close();
      // Cells run one at a time: had the cell not been interrupted, this would wait for it, and see set_late.
      const started = Date.now();
      const after = await session.execute("print('set_late' in globals(), kept + 1)", { timeout: 10 });
      assert.equal(after.stdout, "False 42\n");
      assert.ok(Date.now() - started < 8000);
      const notebook = await session.notebook() as { cells: Array<{ outputs: Array<{ ename?: string }> }> };
      assert.deepEqual(notebook.cells[1]?.outputs.map((o) => o.ename), [undefined, "KeyboardInterrupt"]);
    } finally {
      await session.close();
    }
  });

  test("aborting the signal of a streaming call interrupts the cell and rejects with the abort's reason", async () => {
    const c = client();
    const session = await c.createSession();
    try {
      const controller = new AbortController();
      const reason = new Error("the user pressed stop");
      const run = session.execute("import time\nprint('go', flush=True)\ntime.sleep(10)\nset_late = True",
                                  { timeout: 12, signal: controller.signal, onStdout: () => controller.abort(reason) });
      await assert.rejects(run, (error) => error === reason);
      const after = await session.execute("'set_late' in globals()", { timeout: 10 });
      assert.deepEqual(after.outputs[0]?.output_type === "execute_result" && after.outputs[0].data,
                       { "text/plain": "False" });
    } finally {
      await session.close();
    }
  });

  test("closing a stream before reading it sends nothing", async () => {
    const c = client();
    const session = await c.createSession();
    try {
      const events = session.stream("never_ran = True");
      await events.close();
      const after = await session.execute("'never_ran' in globals()");
      assert.deepEqual(after.outputs[0]?.output_type === "execute_result" && after.outputs[0].data,
                       { "text/plain": "False" });
    } finally {
      await session.close();
    }
  });
});

describe("a server failure mid-stream", () => {
  test("throws the error the error event carries, not data", async () => {
    // A cell queued behind a busy one gets its 200 and then waits; deleting the session makes the
    // queued cell fail inside the server, after the stream began: an `error` event that carries
    // the contract's error body, which must throw.
    const statuses: number[] = [];
    const headersSeen = signal();
    const watching = client({
      fetch: async (input, init) => {
        const response = await baseFetch(input, init);
        if (new Headers(init?.headers).get("accept") === "text/event-stream" && String(input).endsWith("/execute")) {
          statuses.push(response.status);
          headersSeen.resolve();
        }
        return response;
      },
    });
    const c = client();
    const session = await c.createSession();
    const started = signal();
    const busy = session.execute("import time\nprint(1, flush=True)\ntime.sleep(30)", { onStdout: () => started.resolve() })
      .catch((error: unknown) => error);
    await started.promise;
    const queued = (await watching.getSession(session.id)).stream("print('never')");
    const outcome = queued.next().then(() => "an event", (error: unknown) => error);
    await headersSeen.promise;
    await session.close();
    const error = await outcome;
    assert.deepEqual(statuses, [200]); // so the failure came as an event, after the stream began
    // Which class depends on how the engine words a session closed under a waiting cell.
    assert.ok(error instanceof ClosedError || error instanceof NotFoundError, `got ${String(error)}`);
    assert.match(error.message, /closed/);
    await busy;
  });
});
