/**
 * Streaming runs: Server-Sent Events become typed `StreamEvent`s, and the
 * events of one run become its result.
 *
 * The server sends `stdout`, `stderr`, `output`, `error` and a final `done`
 * (API.md, "Streaming"). An `error` event is the user's exception (nbformat,
 * data) unless it carries the contract's `{"error": {...}}` body: then the
 * server itself failed mid-run and the stream throws that error. A stream
 * that ends without `done` lost its server and throws `UnavailableError`.
 * Stopping early (`break`, `close()`, an abort) hangs up, and a hang-up
 * cancels the run on the server.
 */

import { asResult } from "./calls.js";
import { errorFromEvent, isObject, unreadable, UnavailableError } from "./errors.js";
import type { Call, OpenResponse, Transport } from "./http.js";
import { events, type ServerSentEvent } from "./sse.js";
import type {
  BatchStreamItem, DisplayData, ErrorOutput, ExecuteResult, ExecutionResult, StreamCallbacks, StreamEvent, StreamOutput,
} from "./types.js";

/** What a stream's reader makes of one raw event: a value (maybe the last one), the end, or nothing (an event a
 * newer server added). */
export type Read<T> = { value: T; last?: boolean } | { end: true } | { skip: true };

/**
 * A server's event stream as an async iterator of `T`: nothing is sent until the first `next()`,
 * and `close()` (or leaving a `for await` early) hangs up, which stops the work on the server.
 */
export class ServerStream<T> implements AsyncIterableIterator<T> {
  private readonly items: AsyncGenerator<T, void, undefined>;
  private opened: OpenResponse | undefined;

  /** @internal Made by the client. */
  constructor(transport: Transport, call: Call<unknown>, signal: AbortSignal | undefined, read: (raw: ServerSentEvent) => Read<T>) {
    this.items = readStream(transport, call, signal, read, (opened) => {
      this.opened = opened;
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    return this.items.next() as Promise<IteratorResult<T>>;
  }

  async return(): Promise<IteratorResult<T>> {
    await this.close();
    return { done: true, value: undefined };
  }

  /** Disconnect, if the stream is still going (the server then stops the work). A `next()` still waiting rejects. */
  async close(): Promise<void> {
    this.opened?.close(); // now, even while a next() waits for a silent run's next chunk
    await this.items.return().catch(() => undefined);
  }
}

/** The events of one streaming run, for `for await`; `close()` (or `break`) stops it and cancels the run. */
export class EventStream extends ServerStream<StreamEvent> {
  /** @internal Made by `client.stream()` and `session.stream()`. */
  constructor(transport: Transport, call: Call<ExecutionResult>, signal?: AbortSignal) {
    super(transport, call, signal, (raw) => {
      const event = toStreamEvent(raw);
      return { value: event, last: event.event === "done" };
    });
  }

  /** Read the stream to its end and return the run's result, calling `callbacks` on the way. */
  async result(callbacks: StreamCallbacks = {}): Promise<ExecutionResult> {
    let result: ExecutionResult | undefined;
    // Read on after "done" to the end of the body (it ends right there), so the connection is kept.
    for await (const event of this) {
      await dispatch(event, callbacks);
      if (event.event === "done") result = event.data;
    }
    if (result === undefined) throw new UnavailableError("the stream ended before the run finished");
    return result;
  }
}

/** A streamed batch's event: `{ index, result }` for a `result`, the end at `done`; an `error` event throws. */
export function readBatchEvent(raw: ServerSentEvent): Read<BatchStreamItem> {
  let payload: unknown;
  try {
    payload = JSON.parse(raw.data);
  } catch (error) {
    throw unreadable(`a ${JSON.stringify(raw.event)} event`, error);
  }
  if (raw.event === "error" && isObject(payload) && "error" in payload) throw errorFromEvent(payload.error);
  if (raw.event === "done") return { end: true };
  if (raw.event !== "result") return { skip: true };
  if (!isObject(payload) || typeof payload.index !== "number") throw unreadable("a \"result\" event");
  return { value: { index: payload.index, result: asResult(payload.result) } };
}

/** Whether any callback is given, so the call should stream. */
export function wantsStream(callbacks: StreamCallbacks): boolean {
  return Boolean(callbacks.onStdout || callbacks.onStderr || callbacks.onOutput || callbacks.onError || callbacks.onEvent);
}

async function dispatch(event: StreamEvent, callbacks: StreamCallbacks): Promise<void> {
  if (event.event === "stdout") await callbacks.onStdout?.(event.data.text);
  else if (event.event === "stderr") await callbacks.onStderr?.(event.data.text);
  else if (event.event === "output") await callbacks.onOutput?.(event.data);
  else if (event.event === "error") await callbacks.onError?.(event.data);
  await callbacks.onEvent?.(event);
}

async function* readStream<T>(transport: Transport, call: Call<unknown>, signal: AbortSignal | undefined,
                              read: (raw: ServerSentEvent) => Read<T>,
                              onOpen: (opened: OpenResponse) => void): AsyncGenerator<T, void, undefined> {
  const opened = await transport.open(call, signal);
  onOpen(opened);
  let complete = false;
  try {
    for await (const raw of events(opened.chunks)) {
      if (complete) continue; // the body ends right after the last event; read it out to keep the connection
      const item = read(raw);
      if ("skip" in item) continue;
      if ("end" in item) {
        complete = true;
        continue;
      }
      yield item.value;
      complete = item.last === true;
    }
  } finally {
    opened.close(); // after the end, a no-op; before it, a hang-up, which stops the work on the server
  }
  if (!complete) throw new UnavailableError(`the stream from the server at ${transport.baseUrl} ended before it was complete`);
}

/** Parse one raw event into sandlot's types; an `error` event that is the server's own failure throws. */
export function toStreamEvent(raw: ServerSentEvent): StreamEvent {
  let payload: unknown;
  try {
    payload = JSON.parse(raw.data);
  } catch (error) {
    throw unreadable(`a ${JSON.stringify(raw.event)} event`, error);
  }
  const bad = () => unreadable(`a ${JSON.stringify(raw.event)} event`);
  switch (raw.event) {
    case "stdout":
    case "stderr": {
      if (!isObject(payload) || typeof payload["text"] !== "string") throw bad();
      const data: StreamOutput = { output_type: "stream", name: raw.event, text: payload["text"] };
      return { event: raw.event, data };
    }
    case "output": {
      const type = isObject(payload) ? payload["output_type"] : undefined;
      if (type !== "display_data" && type !== "execute_result") throw bad();
      return { event: "output", data: payload as DisplayData | ExecuteResult };
    }
    case "error": {
      if (isObject(payload) && "error" in payload && !("ename" in payload)) {
        // Not the user's exception (that is an nbformat error object) but the server's: the run is over.
        throw errorFromEvent(payload["error"]);
      }
      if (!isObject(payload) || typeof payload["ename"] !== "string") throw bad();
      return { event: "error", data: payload as ErrorOutput };
    }
    case "done":
      return { event: "done", data: asResult(payload, `a "done" event`) };
    default:
      return { event: "unknown", name: raw.event, data: payload }; // a newer server's event: handed over as it came
  }
}
