/**
 * The public result and option types. Everything the server sends is typed
 * from its OpenAPI description (`openapi.ts`, generated; see
 * `scripts/openapi.mjs`), so a field the server adds or changes shows up
 * here when the file is regenerated, and the test run fails until it is.
 */

import type { components } from "./openapi.js";

type Schemas = components["schemas"];

/** What every run returns (API.md, "Execution result"). */
export type ExecutionResult = Schemas["ExecutionResult"];
/** How a run ended: `ok`, `error` (the code raised), `timeout`, `memory` or `killed`. */
export type Status = ExecutionResult["status"];
/** The exception user code raised: data, not a thrown error. */
export type ExecutionError = Schemas["ExecutionError"];
/** CPU time and peak memory a run used. */
export type Usage = Schemas["Usage"];
/** One connection the run's code asked the egress proxy for, allowed or not (`result.network`). */
export type NetworkConnection = Schemas["NetworkConnection"];
/** A session's egress policy (`info.network`): what it may reach, and what it was granted that the server no
 * longer allows. */
export type SessionNetwork = Schemas["SessionNetwork"];
/**
 * Network through the server's egress proxy (docs/egress.md): `true`, everything the server allows; a list of
 * destinations (`"example.com"`, `"*.example.com"`, `"host:port"`, an address or CIDR), each within what it
 * allows (else an `InvalidRequestError`); `false` or unset, none.
 */
export type Network = boolean | string[];

/** One call the run's code made to a host tool. */
export type ToolCallRecord = Schemas["ToolCallRecord"];

/** Text written to stdout or stderr (nbformat `stream`). */
export type StreamOutput = Schemas["StreamOutput"];
/** A rich object shown with `display()`, or a figure: a MIME bundle (nbformat `display_data`). */
export type DisplayData = Schemas["DisplayData"];
/** The value of the cell's trailing expression (nbformat `execute_result`). */
export type ExecuteResult = Schemas["ExecuteResult"];
/** The exception that ended the cell (nbformat `error`). */
export type ErrorOutput = Schemas["ErrorOutput"];
/** One nbformat v4 output object, in `result.outputs`; switch on `output_type`. */
export type Output = ExecutionResult["outputs"][number];

/** A session as the server describes it (`GET /v1/sessions/{id}`). */
export type SessionInfo = Schemas["SessionInfo"];
/** One file in a session's workspace (`GET /v1/sessions/{id}/files`). */
export type FileInfo = Schemas["FileEntry"];
/** The server's `/healthz` body. */
export type Health = Schemas["Health"];
/** Limits for one run or session instead of the server's defaults, up to its maximums. */
export type LimitsOverride = Schemas["LimitsOverride"];

/** File contents: bytes, or text (sent as UTF-8). */
export type FileData = Uint8Array | ArrayBuffer | string;

/** Options every call takes. */
export interface RequestOptions {
  /**
   * Cancels the call; it rejects with the signal's reason, as `fetch` does. Aborting a run also
   * stops it on the server: a one-shot run's sandbox is killed, a session cell is interrupted (the
   * session's state is kept). A run given a signal streams under the hood for that, since only a
   * stream's disconnect reaches the run; its result is the same.
   */
  signal?: AbortSignal;
}

/** Callbacks for the events of a run, as they happen; giving any of them makes the call stream. */
export interface StreamCallbacks {
  /** Text the code wrote to stdout. */
  onStdout?: (text: string) => void | Promise<void>;
  /** Text the code wrote to stderr. */
  onStderr?: (text: string) => void | Promise<void>;
  /** A displayed object or the trailing expression's value. */
  onOutput?: (output: DisplayData | ExecuteResult) => void | Promise<void>;
  /** The exception that ended the cell (still data: the result follows). */
  onError?: (error: ErrorOutput) => void | Promise<void>;
  /** Every event, `done` included, after the specific callback. */
  onEvent?: (event: StreamEvent) => void | Promise<void>;
}

/** Options of a cell in a session. */
export interface SessionExecuteOptions extends RequestOptions, StreamCallbacks {
  /** Wall-clock seconds for this run (the server's default otherwise, up to its maximum). */
  timeout?: number;
}

/** Options of a one-shot run. */
export interface ExecuteOptions extends SessionExecuteOptions {
  /** Files placed in the workspace before the run: relative path → contents. */
  files?: Record<string, FileData>;
  /** Environment variables for the run. */
  env?: Record<string, string>;
  /** Host tools the code may call (default: all the server registered). */
  tools?: string[];
  /** Limits for this run instead of the server's defaults. */
  limits?: LimitsOverride;
  /** The environment to run in (`GET /v1/environments`; default: the server's default one). */
  environment?: string;
  /** Network through the egress proxy; `result.network` lists every connection. Default: none. */
  network?: Network;
}

/** Options of `session.stream()`: a cell's, without the callbacks (the events are what you iterate). */
export type SessionStreamOptions = Omit<SessionExecuteOptions, keyof StreamCallbacks>;

/** Options of `client.stream()`: a one-shot run's, without the callbacks. */
export type StreamOptions = Omit<ExecuteOptions, keyof StreamCallbacks>;

/** Options for `Client.createSession`. */
export interface SessionOptions extends RequestOptions {
  /** Default wall-clock seconds for each cell. */
  timeout?: number;
  /** Seconds the session may sit unused before the server closes it. */
  idleTimeout?: number;
  /** Environment variables for the session's interpreter. */
  env?: Record<string, string>;
  /** Host tools the session's code may call. */
  tools?: string[];
  /** Limits for the session instead of the server's defaults. */
  limits?: LimitsOverride;
  /** The environment its interpreters run in (default: the server's default one). */
  environment?: string;
  /** Network for every cell and command of the session (each result lists its connections). Default: none.
   * The server keeps it with the session, checked against its allow list again after a restart. */
  network?: Network;
}

/** One item of a batch: code, or `{code, session_id?, timeout?, network?, ...}` (an item for a session has the
 * session's network and may not ask for its own). */
export type BatchItem = string | (Omit<Schemas["BatchItem"], "network"> & { network?: Network });

/** One item's result from `client.batchStream()`: its place in the batch, and its result. */
export interface BatchStreamItem {
  index: number;
  result: ExecutionResult;
}

/**
 * One event of a streaming run, parsed into the same types a finished result holds.
 *
 * - `stdout` / `stderr`: a `StreamOutput` (`.text`)
 * - `output`: a `DisplayData` or `ExecuteResult`
 * - `error`: an `ErrorOutput`, the exception that ended the user's cell (data: the run still ends with `done`)
 * - `done`: the complete `ExecutionResult`; always the last event
 * - `unknown`: an event this client does not know (from a newer server), by its `name`, with its JSON as `data`
 */
export type StreamEvent =
  | { event: "stdout"; data: StreamOutput }
  | { event: "stderr"; data: StreamOutput }
  | { event: "output"; data: DisplayData | ExecuteResult }
  | { event: "error"; data: ErrorOutput }
  | { event: "done"; data: ExecutionResult }
  | { event: "unknown"; name: string; data: unknown };
