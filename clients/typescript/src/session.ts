/**
 * A session on the server: a persistent interpreter, like a notebook kernel.
 * Variables, imports and files carry over between cells; cells of one session
 * run one at a time, in the order they arrive.
 */

import * as calls from "./calls.js";
import { NotFoundError } from "./errors.js";
import { SessionFiles } from "./files.js";
import type { Transport } from "./http.js";
import { EventStream, wantsStream } from "./stream.js";
import type { ExecutionResult, RequestOptions, SessionExecuteOptions, SessionInfo, SessionStreamOptions } from "./types.js";

export class Session {
  /** The session's id (`ses_…`). */
  readonly id: string;
  /** The session's workspace files. */
  readonly files: SessionFiles;
  private closed = false;

  /** @internal Made by `Client.createSession` and `Client.getSession`. */
  constructor(private readonly transport: Transport, id: string) {
    this.id = id;
    this.files = new SessionFiles(transport, id);
  }

  /**
   * Run a cell. With any of the callbacks (`onStdout`, `onStderr`, `onOutput`, `onError`, `onEvent`)
   * the call streams and they are called as the cell runs; the result is the same either way. An
   * exception in the code is data (`result.status === "error"`), not a thrown error. Aborting the
   * `signal` of a streaming call interrupts the cell (the session's state is kept).
   */
  async execute(code: string, options: SessionExecuteOptions = {}): Promise<ExecutionResult> {
    const stream = wantsStream(options) || options.signal !== undefined;
    const call = calls.sessionExecuteCall(this.id, code, options, stream);
    if (!stream) return await this.transport.send(call, options.signal);
    return await new EventStream(this.transport, call, options.signal).result(options);
  }

  /** Run a cell, yielding its events as they happen (`for await`); leaving early interrupts the cell. */
  stream(code: string, options: SessionStreamOptions = {}): EventStream {
    return new EventStream(this.transport, calls.sessionExecuteCall(this.id, code, options, true), options.signal);
  }

  /** Stop the running cell, if any (it ends with `KeyboardInterrupt`; the session's state is kept). */
  async interrupt(options: RequestOptions = {}): Promise<void> {
    await this.transport.send(calls.interruptCall(this.id), options.signal);
  }

  /** The session's history as a Jupyter notebook (nbformat 4 JSON, ready to save as `.ipynb`). */
  async notebook(options: RequestOptions = {}): Promise<Record<string, unknown>> {
    return await this.transport.send(calls.notebookCall(this.id), options.signal);
  }

  /** The session as the server sees it now. */
  async info(options: RequestOptions = {}): Promise<SessionInfo> {
    return await this.transport.send(calls.getSessionCall(this.id), options.signal);
  }

  /** Save the session's state and end its interpreter; its files stay reachable and the next cell resumes it. */
  async pause(options: RequestOptions = {}): Promise<SessionInfo> {
    return await this.transport.send(calls.pauseCall(this.id), options.signal);
  }

  /** Bring the interpreter back now, with the saved state (the next result's `resumed` says what came back). */
  async resume(options: RequestOptions = {}): Promise<SessionInfo> {
    return await this.transport.send(calls.resumeCall(this.id), options.signal);
  }

  /** A new session with a copy of this one's files and saved state (paused; its first cell resumes it). */
  async fork(options: RequestOptions = {}): Promise<Session> {
    const info = await this.transport.send(calls.forkCall(this.id), options.signal);
    return new Session(this.transport, info.id);
  }

  /** The session as one archive (gzip tar, docs/sessions.md), for `Client.importSession` here or elsewhere. */
  async archive(options: RequestOptions = {}): Promise<Uint8Array> {
    return await this.transport.send(calls.archiveCall(this.id), options.signal);
  }

  /** Delete the session and its sandbox on the server. Closing twice, or after it expired, is fine. */
  async close(options: RequestOptions = {}): Promise<void> {
    if (this.closed) return;
    try {
      await this.transport.send(calls.deleteSessionCall(this.id), options.signal);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error; // already gone: the state we wanted
    }
    this.closed = true;
  }

  toString(): string {
    return `Session(${this.id}${this.closed ? ", closed" : ""})`;
  }
}
