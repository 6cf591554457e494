/**
 * Every API operation as data: a pure function from arguments to the `Call`
 * to send (method, path, body) and how to read its answer. The client and the
 * session only hand these to the transport, so what goes over the wire is in
 * one place, next to API.md's description of it.
 *
 * Answers are checked for the shape this client relies on (an object with an
 * `id` and a `status`, a list where a list belongs) before they are typed: a
 * wrong URL or a proxy's page is a `SandlotError` that says so, not an
 * `undefined` deep in the caller's code.
 */

import { toBase64, toBytes } from "./bytes.js";
import { InvalidRequestError, isObject, unreadable } from "./errors.js";
import type { Call } from "./http.js";
import type {
  BatchItem, ExecuteOptions, ExecutionResult, FileData, FileInfo, Health, Network, SessionExecuteOptions, SessionInfo,
  SessionOptions,
} from "./types.js";

// ---- reading answers ------------------------------------------------------------------

async function json(response: Response, what: string): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (error) {
    throw unreadable(what, error);
  }
}

async function object(response: Response, what: string): Promise<Record<string, unknown>> {
  const body = await json(response, what);
  if (!isObject(body)) throw unreadable(`${what} that is not a JSON object`);
  return body;
}

async function listField<T>(response: Response, name: string, check: (item: unknown) => boolean,
                            what: string): Promise<T[]> {
  const body = await object(response, what);
  const items = body[name];
  if (!Array.isArray(items) || !items.every(check)) throw unreadable(`${what} without a valid ${JSON.stringify(name)} list`);
  return items as T[];
}

/** An execution result as it came: checked for the fields every result has. */
export function asResult(value: unknown, what = "an execution result"): ExecutionResult {
  if (!isObject(value) || typeof value["id"] !== "string" || typeof value["status"] !== "string" ||
      !Array.isArray(value["outputs"])) {
    throw unreadable(what);
  }
  return value as unknown as ExecutionResult;
}

const isSession = (v: unknown): boolean => isObject(v) && typeof v["id"] === "string";
const isFile = (v: unknown): boolean => isObject(v) && typeof v["path"] === "string" && typeof v["size"] === "number";

const result = async (r: Response): Promise<ExecutionResult> => asResult(await json(r, "an execution result"));
const session = async (r: Response): Promise<SessionInfo> => {
  const body = await object(r, "a session");
  if (!isSession(body)) throw unreadable("a session without an id");
  return body as unknown as SessionInfo;
};
const nothing = async (r: Response): Promise<void> => {
  await r.body?.cancel();
};
const bytes = async (r: Response): Promise<Uint8Array> => new Uint8Array(await r.arrayBuffer());

// ---- paths ----------------------------------------------------------------------------

/**
 * A workspace path for a URL, quoted one segment at a time, without normalizing it.
 *
 * `/` stays a separator and everything else is escaped, so `a b#c.txt` works. Dot segments are
 * refused here, unlike in the Python SDK (which leaves them to the server): the URL standard that
 * `fetch` follows resolves `.` and `..` (even as `%2E%2E`) before the request leaves, so
 * `../x` would reach a different route instead of the server's 400.
 */
export function quotePath(path: string): string {
  const segments = path.split("/");
  if (segments.some((segment) => segment === "." || segment === "..")) {
    throw new InvalidRequestError(
      `the path ${JSON.stringify(path)} has a "." or ".." segment: workspace paths are relative and stay inside the workspace`,
      { type: "invalid_request" });
  }
  return segments.map(encodeURIComponent).join("/");
}

function sessionPath(sessionId: string, rest = ""): string {
  return `/v1/sessions/${encodeURIComponent(sessionId)}${rest}`;
}

function defined<T extends Record<string, unknown>>(body: T): Partial<T> {
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** A run's or session's `network` as the server takes it: `{}` is everything it allows. */
function networkBody(network: Network | undefined): { allow?: string[] } | undefined {
  if (network === undefined || network === false) return undefined;
  if (network === true) return {};
  if (!Array.isArray(network)) throw new TypeError("network is true, false or a list of destinations");
  return { allow: [...network] };
}

// ---- the calls ------------------------------------------------------------------------

export function executeCall(code: string, options: ExecuteOptions, stream: boolean): Call<ExecutionResult> {
  const files = options.files === undefined ? undefined
    : Object.entries(options.files).map(([path, data]) => ({ path, content: toBase64(data) }));
  const json = defined({ code, timeout: options.timeout, files, env: options.env, tools: options.tools,
                         limits: options.limits, environment: options.environment, network: networkBody(options.network),
                         stream: stream || undefined });
  return { method: "POST", path: "/v1/execute", parse: result, json, runTimeout: options.timeout, stream };
}

export function sessionExecuteCall(sessionId: string, code: string, options: SessionExecuteOptions,
                                   stream: boolean): Call<ExecutionResult> {
  const json = defined({ code, timeout: options.timeout, stream: stream || undefined });
  return { method: "POST", path: sessionPath(sessionId, "/execute"), parse: result, json, runTimeout: options.timeout,
           stream };
}

export function batchCall(items: BatchItem[], stream = false): Call<ExecutionResult[]> {
  const body = items.map((item) => (typeof item === "string" ? { code: item }
    : defined({ ...item, network: networkBody(item.network) })));
  // Items run in parallel, but one session's items run in turn: the longest is a floor, not a bound.
  const timeouts = body.map((item) => item.timeout).filter((t): t is number => typeof t === "number");
  return {
    method: "POST", path: "/v1/batch", json: stream ? { items: body, stream: true } : { items: body },
    runTimeout: timeouts.length ? Math.max(...timeouts) : undefined,
    parse: async (r) => (await listField<unknown>(r, "results", isObject, "batch results")).map((v) => asResult(v)),
  };
}

export function createSessionCall(options: SessionOptions): Call<SessionInfo> {
  const json = defined({ timeout: options.timeout, idle_timeout: options.idleTimeout, env: options.env,
                         tools: options.tools, limits: options.limits, environment: options.environment,
                         network: networkBody(options.network) });
  return { method: "POST", path: "/v1/sessions", parse: session, json };
}

export function getSessionCall(sessionId: string): Call<SessionInfo> {
  return { method: "GET", path: sessionPath(sessionId), parse: session };
}

export function listSessionsCall(): Call<SessionInfo[]> {
  return { method: "GET", path: "/v1/sessions", parse: (r) => listField(r, "sessions", isSession, "sessions") };
}

export function deleteSessionCall(sessionId: string): Call<void> {
  return { method: "DELETE", path: sessionPath(sessionId), parse: nothing };
}

export function interruptCall(sessionId: string): Call<void> {
  return { method: "POST", path: sessionPath(sessionId, "/interrupt"), parse: nothing };
}

export function uploadCall(sessionId: string, path: string, data: FileData): Call<void> {
  return { method: "PUT", path: sessionPath(sessionId, `/files/${quotePath(path)}`), parse: nothing, body: toBytes(data) };
}

export function downloadCall(sessionId: string, path: string): Call<Uint8Array> {
  return { method: "GET", path: sessionPath(sessionId, `/files/${quotePath(path)}`), parse: bytes };
}

export function deleteFileCall(sessionId: string, path: string): Call<void> {
  return { method: "DELETE", path: sessionPath(sessionId, `/files/${quotePath(path)}`), parse: nothing };
}

export function filesCall(sessionId: string): Call<FileInfo[]> {
  return { method: "GET", path: sessionPath(sessionId, "/files"), parse: (r) => listField(r, "files", isFile, "files") };
}

export function notebookCall(sessionId: string): Call<Record<string, unknown>> {
  return { method: "GET", path: sessionPath(sessionId, "/notebook"), parse: (r) => object(r, "a notebook") };
}

export function pauseCall(sessionId: string): Call<SessionInfo> {
  return { method: "POST", path: sessionPath(sessionId, "/pause"), parse: session };
}

export function resumeCall(sessionId: string): Call<SessionInfo> {
  return { method: "POST", path: sessionPath(sessionId, "/resume"), parse: session };
}

export function forkCall(sessionId: string): Call<SessionInfo> {
  return { method: "POST", path: sessionPath(sessionId, "/fork"), parse: session };
}

export function archiveCall(sessionId: string): Call<Uint8Array> {
  return { method: "GET", path: sessionPath(sessionId, "/archive"), parse: bytes };
}

export function importCall(archive: FileData): Call<SessionInfo> {
  return { method: "POST", path: "/v1/sessions/import", parse: session, body: toBytes(archive) };
}

export function healthCall(): Call<Health> {
  return { method: "GET", path: "/healthz", parse: async (r) => (await object(r, "a health answer")) as unknown as Health };
}
