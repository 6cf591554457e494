/**
 * sandlot's errors: one root, each leaf says when it is raised. The same tree,
 * names and error words as the Python SDK (`sandlot._errors`), so code that
 * handles one handles the other.
 *
 *     SandlotError
 *     ├── SetupError               the host cannot give the isolation asked for
 *     ├── AuthenticationError      a missing or wrong API key (401)
 *     ├── UnavailableError         the server is shutting down (503) or could not be reached
 *     │   └── RequestTimeoutError  the client gave up waiting for an answer
 *     ├── SandboxError             one sandbox failed, not the user's code (500)
 *     │   ├── SpawnError           a sandbox could not start or contain itself
 *     │   └── ProtocolError        a sandbox broke the channel protocol
 *     ├── UpstreamError            the agent endpoint's model failed (502)
 *     │   └── UpstreamTimeoutError the model did not answer in time (504)
 *     ├── CapacityError            no capacity or quota left right now (429); see `retryAfter`
 *     ├── ClosedError              something was used after it was closed (409)
 *     ├── NotFoundError            no such session or file (404)
 *     ├── InvalidRequestError      the request is malformed (400)
 *     └── TooLargeError            code or an upload over its limit (413)
 *
 * An exception in the *user's code* is none of these: it is data in the
 * result (`result.status === "error"`). These are infrastructure failures.
 *
 * Every error the server answered carries that answer's HTTP `status` and its
 * `type` word (`{"error": {"type", "message"}}`); which class it is follows
 * from the status, narrowed by the word (see `errorClass`).
 */

/** What an error was made from: the answer's status and error word, and the underlying failure. */
export interface SandlotErrorOptions {
  /** The HTTP status of the server's answer, when there was one. */
  status?: number;
  /** The contract's `error.type` word from the answer. */
  type?: string;
  /** The failure this error translates (a `fetch` rejection, say). */
  cause?: unknown;
}

/** Root of every sandlot infrastructure error. */
export class SandlotError extends Error {
  /** The HTTP status this class stands for on the server. */
  static readonly httpStatus: number = 500;
  /** The contract's error word for this class. */
  static readonly errorType: string = "internal_error";

  /** The HTTP status of the answer this error came from; `undefined` when no answer came (a transport failure, a stream event). */
  readonly status: number | undefined;
  /** The error word: the answer's `error.type`, or this class's own. */
  readonly type: string;

  constructor(message: string, options: SandlotErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = options.status;
    this.type = options.type || (new.target as typeof SandlotError).errorType;
  }
}

/** The host cannot provide what the configuration asks for (for example strict isolation without namespaces). */
export class SetupError extends SandlotError {
  static override readonly httpStatus: number = 503;
  static override readonly errorType: string = "setup_error";
}

/** A request had no API key, or a wrong one. */
export class AuthenticationError extends SandlotError {
  static override readonly httpStatus: number = 401;
  static override readonly errorType: string = "unauthorized";
}

/** The server is shutting down, or could not be reached. */
export class UnavailableError extends SandlotError {
  static override readonly httpStatus: number = 503;
  static override readonly errorType: string = "unavailable";
}

/** The client stopped waiting for the server's answer (not a run's own timeout, which is data: `status: "timeout"`). */
export class RequestTimeoutError extends UnavailableError {
  static override readonly errorType: string = "request_timeout";
}

/** A sandbox failed for a reason that is not the user's code. */
export class SandboxError extends SandlotError {
  static override readonly httpStatus: number = 500;
  static override readonly errorType: string = "sandbox_error";
}

/** A sandbox could not be started or could not contain itself. */
export class SpawnError extends SandboxError {
  static override readonly errorType: string = "spawn_error";
}

/** A sandbox sent frames that break the channel protocol. */
export class ProtocolError extends SandboxError {
  static override readonly errorType: string = "protocol_error";
}

/** The agent endpoint's upstream model failed, could not be reached, or refused the request. */
export class UpstreamError extends SandlotError {
  static override readonly httpStatus: number = 502;
  static override readonly errorType: string = "upstream_error";
}

/** The agent endpoint's upstream model did not answer in time. */
export class UpstreamTimeoutError extends UpstreamError {
  static override readonly httpStatus: number = 504;
  static override readonly errorType: string = "upstream_timeout";
}

/** No sandbox capacity or per-key quota is left right now; retry after `retryAfter` seconds. */
export class CapacityError extends SandlotError {
  static override readonly httpStatus: number = 429;
  static override readonly errorType: string = "capacity";

  /** Seconds to wait before retrying: the answer's `Retry-After`, else 1. */
  readonly retryAfter: number;

  constructor(message: string, options: SandlotErrorOptions & { retryAfter?: number } = {}) {
    super(message, options);
    this.retryAfter = options.retryAfter ?? DEFAULT_RETRY_AFTER;
  }
}

/** A session (or other resource) was closed by its owner and cannot be used. */
export class ClosedError extends SandlotError {
  static override readonly httpStatus: number = 409;
  static override readonly errorType: string = "closed";
}

/** No session or file by that name (for this API key). */
export class NotFoundError extends SandlotError {
  static override readonly httpStatus: number = 404;
  static override readonly errorType: string = "not_found";
}

/** The request itself is invalid: a path leaving the workspace, a bad timeout, limits out of range. */
export class InvalidRequestError extends SandlotError {
  static override readonly httpStatus: number = 400;
  static override readonly errorType: string = "invalid_request";
}

/** Code or an upload is over its size limit. */
export class TooLargeError extends SandlotError {
  static override readonly httpStatus: number = 413;
  static override readonly errorType: string = "too_large";
}

/** The retry delay a `CapacityError` gets when the answer names none. */
export const DEFAULT_RETRY_AFTER = 1.0;

export type SandlotErrorClass = typeof SandlotError;

const BY_STATUS: ReadonlyMap<number, SandlotErrorClass> = new Map<number, SandlotErrorClass>([
  [400, InvalidRequestError],
  [401, AuthenticationError],
  [403, AuthenticationError],
  [404, NotFoundError],
  [409, ClosedError],
  [413, TooLargeError],
  [429, CapacityError],
  [500, SandboxError],
  // A reverse proxy in front of sandlot says 502/504 when sandlot itself is down or stuck.
  [502, UnavailableError],
  [503, UnavailableError],
  [504, UnavailableError],
]);

// Every leaf by its word. SandlotError's own word ("internal_error") is not here: a 500 that says
// only that is a SandboxError, as in the Python SDK.
const LEAVES: SandlotErrorClass[] = [
  SetupError, AuthenticationError, UnavailableError, RequestTimeoutError, SandboxError, SpawnError, ProtocolError,
  UpstreamError, UpstreamTimeoutError, CapacityError, ClosedError, NotFoundError, InvalidRequestError, TooLargeError,
];
const BY_TYPE: ReadonlyMap<string, SandlotErrorClass> = new Map(LEAVES.map((cls) => [cls.errorType, cls]));

/**
 * The class for an error answer: by `status`, narrowed by the `type` word to a subclass of that
 * class (a 500 `spawn_error` is a `SpawnError`) or to a class that carries that very status (a 503
 * `setup_error` is a `SetupError`). An unknown word, or a status from something in front of sandlot,
 * falls back to the status's class. Inside a stream there is no status (`undefined`): the word decides.
 */
export function errorClass(status: number | undefined, type: string): SandlotErrorClass {
  const named = BY_TYPE.get(type);
  if (status === undefined) return named ?? SandboxError;
  const byStatus = BY_STATUS.get(status) ??
    (status >= 500 ? SandboxError : status >= 400 ? InvalidRequestError : SandlotError);
  if (named !== undefined && (named === byStatus || named.prototype instanceof byStatus || named.httpStatus === status)) {
    return named;
  }
  return byStatus;
}

/** An instance of `cls`, with `retryAfter` for a `CapacityError`. */
export function makeError(cls: SandlotErrorClass, message: string,
                          options: SandlotErrorOptions & { retryAfter?: number } = {}): SandlotError {
  if (cls === CapacityError || cls.prototype instanceof CapacityError) {
    return new (cls as typeof CapacityError)(message, options);
  }
  return new cls(message, options);
}

/** The error for a non-2xx answer; reads the answer's body. */
export async function errorFromResponse(response: Response): Promise<SandlotError> {
  const text = await response.text().catch(() => "");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  let [type, message] = typeAndMessage(isObject(body) ? body["error"] : undefined);
  if (!message) {
    // Not the contract's shape: perhaps a proxy's page. Say what came back, briefly.
    const snippet = text.slice(0, 200).trim();
    message = `HTTP ${response.status} ${response.statusText}`.trimEnd() + (snippet ? `: ${snippet}` : "");
  }
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  return makeError(errorClass(response.status, type), message,
                   { status: response.status, type: type || undefined, retryAfter });
}

/** The error for an `error` event that carries `{"error": {...}}`: the server itself failed mid-stream. */
export function errorFromEvent(body: unknown): SandlotError {
  const [type, message] = typeAndMessage(body);
  return makeError(errorClass(undefined, type), message || "the server failed during the run", { type: type || undefined });
}

/** Seconds from a `Retry-After` header: delta-seconds or an HTTP date; `undefined` if absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const when = Date.parse(trimmed);
  return Number.isNaN(when) ? undefined : Math.max(0, (when - Date.now()) / 1000);
}

/** The error for a 2xx answer this client cannot read: a wrong URL, a proxy, or a server of another version. */
export function unreadable(what: string, cause?: unknown): SandlotError {
  const detail = cause instanceof Error ? `: ${cause.message}` : "";
  return new SandlotError(`the server sent ${what} this client cannot read${detail}`, { cause });
}

function typeAndMessage(body: unknown): [string, string] {
  if (!isObject(body)) return ["", ""];
  const type = body["type"];
  const message = body["message"];
  return [typeof type === "string" ? type : "", typeof message === "string" ? message : ""];
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
