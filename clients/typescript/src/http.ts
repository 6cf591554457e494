/**
 * The transport: one `fetch` per call, with the client's headers and
 * timeout, and the one seam where `fetch` failures and error answers become
 * sandlot's errors.
 *
 * Every API operation is described as data first (a `Call`, built in
 * `calls.ts`); `Transport` only does the I/O. A timeout is a deadline for the
 * whole answer, stretched for a run that has its own, longer limit; for a
 * stream it is the longest wait for the next chunk. A caller's `AbortSignal`
 * aborts the request, and its reason is what the call rejects with, as `fetch`
 * itself does: a cancellation is not a sandlot error.
 */

import { errorFromResponse, RequestTimeoutError, SandlotError, UnavailableError } from "./errors.js";
import { VERSION } from "./version.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8765";
/** Seconds the client waits for an answer by default. */
export const DEFAULT_TIMEOUT = 60;
/** A run with its own timeout is waited for that long plus this much (the sandbox starts, the answer comes back). */
export const RUN_TIMEOUT_GRACE = 10;
export const API_KEY_ENV = "SANDLOT_API_KEY";
export const SSE_MEDIA_TYPE = "text/event-stream";

/** How to reach a server. */
export interface ClientOptions {
  /** The server's base URL; default `http://127.0.0.1:8765`. */
  baseUrl?: string;
  /** The API key (`Authorization: Bearer`); default `$SANDLOT_API_KEY` where there is a `process.env`. */
  apiKey?: string;
  /** Seconds to wait for an answer (for a stream: for its next chunk); `null` waits forever. Default 60. */
  timeout?: number | null;
  /** A `fetch` to use instead of the global one (a proxy-aware one, say). */
  fetch?: typeof fetch;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
}

/** One HTTP exchange, described without doing it. */
export interface Call<T> {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  /** How to read a successful answer. */
  parse: (response: Response) => Promise<T>;
  json?: unknown;
  body?: Uint8Array;
  /** The run's own time limit, when the caller set one. */
  runTimeout?: number | undefined;
  /** Answered with Server-Sent Events. */
  stream?: boolean;
}

/** An answer whose body is still arriving: read `chunks`, then (or to stop early) `close()`. */
export interface OpenResponse {
  response: Response;
  chunks: AsyncIterable<Uint8Array>;
  /** Stop reading and drop the connection; before the end of a run's stream, that cancels the run. */
  close(): void;
}

export class Transport {
  readonly baseUrl: string;
  readonly timeout: number | null;
  private readonly apiKey: string | undefined;
  private readonly fetch: typeof fetch;
  private readonly headers: Record<string, string>;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.apiKey = options.apiKey ?? (envVar(API_KEY_ENV) || undefined);
    this.timeout = options.timeout === undefined ? DEFAULT_TIMEOUT : options.timeout;
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.headers = { "User-Agent": `sandlot-client-ts/${VERSION}`, ...options.headers };
    if (this.apiKey) this.headers["Authorization"] = `Bearer ${this.apiKey}`;
  }

  /** Whether requests carry an API key (the key itself is never shown). */
  get authenticated(): boolean {
    return Boolean(this.apiKey);
  }

  /** Do `call` and read its whole answer. */
  async send<T>(call: Call<T>, signal?: AbortSignal): Promise<T> {
    const deadline = new Deadline(this.waitFor(call), signal);
    try {
      const response = await this.exchange(call, deadline);
      if (!response.ok) throw await errorFromResponse(response);
      return await call.parse(response);
    } catch (error) {
      throw this.translate(error, deadline, "lost the connection to");
    } finally {
      deadline.dispose();
    }
  }

  /** Do `call` and hand its body over as it arrives (error answers are read and thrown here). */
  async open(call: Call<unknown>, signal?: AbortSignal): Promise<OpenResponse> {
    const deadline = new Deadline(this.waitFor(call), signal);
    let response: Response;
    try {
      response = await this.exchange(call, deadline);
      if (!response.ok) throw await errorFromResponse(response);
      if (response.body === null) throw new UnavailableError(`the server at ${this.baseUrl} sent no body`);
    } catch (error) {
      deadline.dispose();
      throw this.translate(error, deadline, "lost the connection to");
    }
    const body = response.body;
    let finished = false;
    const chunks = async function* (this: Transport): AsyncGenerator<Uint8Array, void, undefined> {
      const reader = body.getReader();
      try {
        for (;;) {
          deadline.restart(); // the timeout is the longest silence, not a bound on the whole run
          const { done, value } = await reader.read();
          if (done) {
            finished = true;
            return;
          }
          yield value;
        }
      } catch (error) {
        throw this.translate(error, deadline, "lost the connection to");
      } finally {
        // Left early (the consumer stopped, or failed): hang up, so the server stops the run.
        if (finished) deadline.dispose();
        else deadline.abort();
        reader.releaseLock();
      }
    }.call(this);
    const close = (): void => {
      if (!finished) deadline.abort();
    };
    return { response, chunks, close };
  }

  private async exchange(call: Call<unknown>, deadline: Deadline): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers };
    let body: BodyInit | undefined;
    if (call.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(call.json);
    } else if (call.body !== undefined) {
      headers["Content-Type"] = "application/octet-stream";
      body = call.body as Uint8Array<ArrayBuffer>;
    }
    if (call.stream) headers["Accept"] = SSE_MEDIA_TYPE;
    try {
      return await this.fetch(this.baseUrl + call.path, { method: call.method, headers, body, signal: deadline.signal });
    } catch (error) {
      throw this.translate(error, deadline, "could not reach");
    }
  }

  /** Seconds to wait: the client's timeout, or longer for a run that may take longer. */
  private waitFor(call: Call<unknown>): number | null {
    if (this.timeout === null) return null;
    return call.runTimeout === undefined ? this.timeout : Math.max(this.timeout, call.runTimeout + RUN_TIMEOUT_GRACE);
  }

  /** The error to throw for a failure: ours as it is, the caller's abort as its reason, the rest as sandlot's. */
  private translate(error: unknown, deadline: Deadline, what: string): unknown {
    if (error instanceof SandlotError) return error;
    if (deadline.expired) {
      return new RequestTimeoutError(`gave up waiting for the server at ${this.baseUrl} after ${deadline.seconds} s`,
                                     { cause: error });
    }
    if (deadline.callerAborted) return deadline.callerReason;
    if (deadline.closed) return error; // we hung up ourselves: whoever did knows why
    const detail = error instanceof Error ? describe(error) : String(error);
    return new UnavailableError(`${what} the server at ${this.baseUrl}: ${detail}`, { cause: error });
  }
}

/**
 * One request's abort controller: fires when the caller's signal does, when the time runs out, or
 * when the client hangs up itself, and remembers which.
 */
class Deadline {
  readonly signal: AbortSignal;
  expired = false;
  closed = false;
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly onCallerAbort: () => void;

  constructor(readonly seconds: number | null, private readonly caller: AbortSignal | undefined) {
    this.signal = this.controller.signal;
    this.onCallerAbort = () => this.controller.abort(caller?.reason);
    if (caller?.aborted) this.onCallerAbort();
    else caller?.addEventListener("abort", this.onCallerAbort, { once: true });
    this.restart();
  }

  get callerAborted(): boolean {
    return this.caller?.aborted === true;
  }

  get callerReason(): unknown {
    return this.caller?.reason;
  }

  restart(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.seconds === null || this.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort(new Error("timed out"));
    }, this.seconds * 1000);
  }

  abort(): void {
    if (!this.signal.aborted) {
      this.closed = true;
      this.controller.abort();
    }
    this.dispose();
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.caller?.removeEventListener("abort", this.onCallerAbort);
  }
}

/** `fetch failed: connect ECONNREFUSED 127.0.0.1:1` rather than just `fetch failed`. */
function describe(error: Error): string {
  const cause = error.cause;
  return cause instanceof Error && cause.message && !error.message.includes(cause.message)
    ? `${error.message}: ${cause.message}` : error.message || error.name;
}

function envVar(name: string): string | undefined {
  // Only where there is a process.env (Node; Deno with its Node compatibility): other runtimes pass apiKey.
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  try {
    return env?.[name];
  } catch {
    return undefined; // Deno without --allow-env throws rather than saying "unset"
  }
}
