// The HTTP API, as the page calls it: same origin, the key only in the Authorization header.
import { readEvents } from "./sse.js";

const KEY_STORAGE = "sandlot.apiKey";
// Relative to the page (…/ui/), so a proxy that serves sandlot under a path prefix keeps working.
const BASE = new URL("../", window.location.href);

/** An API error with the contract's body: {"error": {"type", "message"}}. */
export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

/** The key lives in sessionStorage: gone when the tab closes, never in a URL or a cookie. */
export const apiKey = {
  get: () => sessionStorage.getItem(KEY_STORAGE) || "",
  set: (key) => (key ? sessionStorage.setItem(KEY_STORAGE, key) : sessionStorage.removeItem(KEY_STORAGE)),
};

function headers(extra = {}) {
  const key = apiKey.get();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(response) {
  let type = "http_error", message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) ({ type, message } = body.error);
  } catch { /* not the contract's JSON: keep the status line */ }
  return new ApiError(response.status, type, message);
}

/** fetch() an API path; JSON bodies get the Content-Type the server insists on (docs/api.md). */
export async function call(method, path, { json, body, accept, signal } = {}) {
  const extra = {};
  if (json !== undefined) extra["Content-Type"] = "application/json";
  if (accept) extra.Accept = accept;
  const response = await fetch(new URL(path, BASE), {
    method, signal, body: json !== undefined ? JSON.stringify(json) : body,
    headers: headers(extra), credentials: "omit", cache: "no-store",
  });
  if (!response.ok) throw await failure(response);
  return response;
}

/** call() and parse the JSON answer (null for 204). */
export async function callJSON(method, path, options) {
  const response = await call(method, path, options);
  return response.status === 204 ? null : response.json();
}

/** POST a JSON body and hand each Server-Sent Event to onEvent(name, data) as it arrives. */
export async function stream(path, json, onEvent, signal) {
  const response = await call("POST", path, { json, accept: "text/event-stream", signal });
  for await (const { event, data } of readEvents(response.body, signal)) onEvent(event, data);
}

/** GET /healthz, open without a key; a 503 still has a body that says why. */
export async function health() {
  const response = await fetch(new URL("healthz", BASE), { cache: "no-store", credentials: "omit" });
  return { ok: response.ok, body: await response.json().catch(() => ({})) };
}
