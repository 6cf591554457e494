/**
 * `nodeFetch`: the part of `fetch` the client uses, over `node:http` and
 * `node:https`, for Node, where the client picks it by itself.
 *
 * Why: Node's own `fetch` (undici) costs more CPU per request than
 * `node:http`: 1.7-1.8 vs 1.1-1.4 ms of client CPU per `execute("print(1)")`
 * with this adapter (benchmarks/bench_typescript.py on the 2-core development
 * VM), on a run that takes ~3-4 ms end to end. The answer is a standard `Response` with a
 * `ReadableStream` body, so everything above the transport is the same code
 * on every runtime. Only what `Transport` sends is supported: a URL string,
 * a method, a header record, a string or byte body, and a signal.
 */

import http from "node:http";
import https from "node:https";

// Keep-alive, as fetch does: a loopback run costs less than a TCP handshake.
const agents = { "http:": new http.Agent({ keepAlive: true }), "https:": new https.Agent({ keepAlive: true }) };
// Statuses whose Response may not have a body (the constructor throws otherwise).
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

export function nodeFetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(new TypeError(`nodeFetch: unsupported protocol ${url.protocol}`));
  }
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const body = init.body;
  if (body !== undefined && body !== null && typeof body !== "string" && !(body instanceof Uint8Array)) {
    return Promise.reject(new TypeError("nodeFetch: the body must be a string or bytes"));
  }
  const headers = Object.fromEntries(new Headers(init.headers).entries());
  if (body !== undefined && body !== null) headers["content-length"] = String(Buffer.byteLength(body));
  const module = url.protocol === "https:" ? https : http;
  return new Promise<Response>((resolve, reject) => {
    const request = module.request(url, { method: init.method ?? "GET", headers, agent: agents[url.protocol as "http:"], signal },
      (incoming) => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(incoming.headers)) {
          if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(", ") : value);
        }
        const status = incoming.statusCode ?? 0;
        const init = { status, statusText: incoming.statusMessage ?? "", headers: responseHeaders };
        if (NULL_BODY.has(status)) {
          incoming.resume(); // read out the (empty) body, so the connection goes back to the pool
          resolve(new Response(null, init));
          return;
        }
        resolve(new Response(webStream(incoming, signal), init));
      });
    request.on("error", (error) => reject(signal?.aborted ? signal.reason : error));
    request.end(body ?? undefined);
  });
}

/** The body as a web stream, with backpressure; an abort or a broken connection errors it. */
function webStream(incoming: http.IncomingMessage, signal: AbortSignal | undefined): ReadableStream<Uint8Array> {
  let open = true;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      incoming.on("data", (chunk: Buffer) => {
        if (!open) return;
        controller.enqueue(chunk); // a Buffer is a Uint8Array
        if ((controller.desiredSize ?? 1) <= 0) incoming.pause();
      });
      incoming.on("end", () => {
        if (open) controller.close();
        open = false;
      });
      // "close" without "end": the connection broke or was aborted before the body was complete.
      incoming.on("close", () => {
        if (open) controller.error(signal?.aborted ? signal.reason : new Error("the connection closed before the body ended"));
        open = false;
      });
      incoming.on("error", () => undefined); // reported by "close"; without a listener it would be thrown
    },
    pull() {
      incoming.resume();
    },
    cancel() {
      open = false;
      incoming.destroy();
    },
  });
}
