// The SSE reader, where a real server cannot reach: bytes split anywhere, CRLF and CR line ends,
// comments, multi-line data, events a newer server might add, a stream cut before `done`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Client, type StreamEvent, UnavailableError } from "sandlot";

/** A client whose server streams `body` one byte at a time. */
function trickling(body: string): Client {
  const bytes = new TextEncoder().encode(body);
  return new Client({
    baseUrl: "http://sandlot.invalid",
    fetch: async () => {
      let i = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (i < bytes.length) controller.enqueue(bytes.subarray(i, ++i));
          else controller.close();
        },
      });
      return new Response(stream, { headers: { "Content-Type": "text/event-stream" } });
    },
  });
}

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const seen: StreamEvent[] = [];
  for await (const event of events) seen.push(event);
  return seen;
}

describe("the SSE reader", () => {
  test("is robust to chunking, line ends and comments", async () => {
    const body = 'event: stdout\ndata: {"name":"stdout","text":"h\u00e9llo \u2713"}\n\n' +
      ": a comment\r\n" +
      "event: future\r\ndata: [1,\r\ndata: 2]\r\n\r\n" +
      'event: stderr\rdata:{"name":"stderr","text":"x"}\r\r' +
      'event: done\ndata: {"id":"exe_1","status":"ok","stdout":"h\u00e9llo \u2713","outputs":[]}\n\n';
    const events = await collect(trickling(body).stream("ignored"));
    assert.deepEqual(events.slice(0, 3), [
      { event: "stdout", data: { output_type: "stream", name: "stdout", text: "h\u00e9llo \u2713" } },
      { event: "unknown", name: "future", data: [1, 2] },
      { event: "stderr", data: { output_type: "stream", name: "stderr", text: "x" } },
    ]);
    assert.ok(events[3]?.event === "done" && events[3].data.stdout === "h\u00e9llo \u2713");
    assert.equal(events.length, 4);
  });

  test("a blank line without data dispatches nothing, and forgets the event name", async () => {
    const body = "event: lonely\n\n" + 'data: {"x":1}\n\n' +
      'event: done\ndata: {"id":"exe_1","status":"ok","outputs":[]}\n\n';
    const events = await collect(trickling(body).stream("ignored"));
    assert.deepEqual(events[0], { event: "unknown", name: "message", data: { x: 1 } });
  });

  test("a stream that ends before done is UnavailableError", async () => {
    const body = 'event: stdout\ndata: {"name":"stdout","text":"a"}\n\nevent: done\ndata: {"id":';
    await assert.rejects(collect(trickling(body).stream("ignored")), (error: unknown) =>
      error instanceof UnavailableError && /ended before/.test(error.message));
  });
});
