/**
 * `Client`: a sandlot server over HTTP, with `fetch`.
 *
 *     const client = new Client({ baseUrl: "http://127.0.0.1:8765", apiKey });
 *     const result = await client.execute("print(6 * 7)");   // result.stdout === "42\n"
 *     const session = await client.createSession();
 *     await session.execute("x = 1");
 *     await session.close();
 *
 * The mirror of the Python SDK's `AsyncClient`: the same operations, the same
 * error classes. There are no connections to close: `fetch` pools them.
 */

import {
  type AgentChunk, type AgentCompletion, chatCall, type ChatCompletionRequest, type ModelInfo, modelsCall, readChunk,
} from "./agent.js";
import * as calls from "./calls.js";
import { type ClientOptions, Transport } from "./http.js";
import { Session } from "./session.js";
import { EventStream, readBatchEvent, ServerStream, wantsStream } from "./stream.js";
import type {
  BatchItem, BatchStreamItem, ExecuteOptions, ExecutionResult, Health, RequestOptions, SessionInfo, SessionOptions, StreamOptions,
} from "./types.js";

export class Client {
  private readonly transport: Transport;

  constructor(options: ClientOptions = {}) {
    this.transport = new Transport(options);
  }

  /** The server's base URL, without a trailing slash. */
  get baseUrl(): string {
    return this.transport.baseUrl;
  }

  // ---- runs ---------------------------------------------------------------------------

  /**
   * Run `code` once in a fresh sandbox, destroyed afterwards. An exception in the code is data
   * (`result.status === "error"`, `result.error`), not a thrown error; so are its limits
   * (`"timeout"`, `"memory"`, `"killed"`). With any of the callbacks (`onStdout`, `onStderr`,
   * `onOutput`, `onError`, `onEvent`) the call streams and they are called as the code runs; the
   * result is the same. Aborting `signal` cancels the run on the server.
   */
  async execute(code: string, options: ExecuteOptions = {}): Promise<ExecutionResult> {
    const stream = wantsStream(options) || options.signal !== undefined;
    const call = calls.executeCall(code, options, stream);
    if (!stream) return await this.transport.send(call, options.signal);
    return await new EventStream(this.transport, call, options.signal).result(options);
  }

  /**
   * Run `code` once, yielding its events as they happen (`for await`); the last is `done`, with
   * the result. The request goes out when iteration starts; leaving early cancels the run.
   */
  stream(code: string, options: StreamOptions = {}): EventStream {
    return new EventStream(this.transport, calls.executeCall(code, options, true), options.signal);
  }

  /**
   * Run many items in one round trip; results come back in item order. Items without a session
   * run in parallel, each in its own sandbox; items for one session run in order, in it.
   */
  async batch(items: BatchItem[], options: RequestOptions = {}): Promise<ExecutionResult[]> {
    return await this.transport.send(calls.batchCall(items), options.signal);
  }

  /**
   * `batch`, streamed (`for await`): `{ index, result }` in item order, each as soon as it and every item
   * before it are in. Leaving early hangs up, which cancels the items without a session.
   */
  batchStream(items: BatchItem[], options: RequestOptions = {}): ServerStream<BatchStreamItem> {
    return new ServerStream(this.transport, calls.batchCall(items, true), options.signal, readBatchEvent);
  }

  // ---- sessions -----------------------------------------------------------------------

  /** Create a stateful session; `close()` it when done (or it closes after `idleTimeout` unused). */
  async createSession(options: SessionOptions = {}): Promise<Session> {
    const info = await this.transport.send(calls.createSessionCall(options), options.signal);
    return new Session(this.transport, info.id);
  }

  /** A new (paused) session from an archive made by `Session.archive`; it belongs to this API key. */
  async importSession(archive: Uint8Array, options: RequestOptions = {}): Promise<Session> {
    const info = await this.transport.send(calls.importCall(archive), options.signal);
    return new Session(this.transport, info.id);
  }

  /** Attach to an existing session (`NotFoundError` if this API key has none by that id). */
  async getSession(sessionId: string, options: RequestOptions = {}): Promise<Session> {
    const info = await this.transport.send(calls.getSessionCall(sessionId), options.signal);
    return new Session(this.transport, info.id);
  }

  /** This API key's open sessions. */
  async listSessions(options: RequestOptions = {}): Promise<SessionInfo[]> {
    return await this.transport.send(calls.listSessionsCall(), options.signal);
  }

  // ---- the agent endpoint -------------------------------------------------------------

  /**
   * One agent request (`POST /v1/chat/completions`): the server calls its model, runs the code the
   * model writes, and repeats until the model answers. The executed steps are in `.sandlot`.
   */
  async chatCompletion(request: ChatCompletionRequest, options: RequestOptions = {}): Promise<AgentCompletion> {
    return await this.transport.send(chatCall(request, false), options.signal);
  }

  /**
   * The same, streamed: content deltas as the model writes, a chunk with `sandlot.step` for each
   * executed step, then the finish chunk with the `sandlot` summary. Leaving early stops the loop.
   */
  chatCompletionStream(request: ChatCompletionRequest, options: RequestOptions = {}): ServerStream<AgentChunk> {
    return new ServerStream(this.transport, chatCall(request, true), options.signal, readChunk);
  }

  /** The models the agent endpoint serves. */
  async models(options: RequestOptions = {}): Promise<ModelInfo[]> {
    return await this.transport.send(modelsCall(), options.signal);
  }

  // ---- operations ---------------------------------------------------------------------

  /** The server's `/healthz` body; `UnavailableError` while it cannot serve a run (draining, no capacity). */
  async health(options: RequestOptions = {}): Promise<Health> {
    return await this.transport.send(calls.healthCall(), options.signal);
  }

  toString(): string {
    return `Client(${this.baseUrl}, auth=${this.transport.authenticated ? "yes" : "no"})`;
  }
}
