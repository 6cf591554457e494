// A Server-Sent Events parser over fetch()'s ReadableStream. EventSource cannot POST or send an
// Authorization header, and both streaming endpoints need both.

/** Yield {event, data} for each event in the stream (data JSON-parsed when it is JSON). */
export async function* readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const abort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", abort, { once: true });
  let buffer = "";
  let ended = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      signal?.throwIfAborted(); // a cancelled read ends like the stream's end: tell them apart
      if (done) { ended = true; break; }
      buffer += value;
      // Events end with a blank line; the spec allows \r\n, \n and \r as line ends.
      let end;
      while ((end = buffer.search(/\r\n\r\n|\n\n|\r\r/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n\r\n", end) ? 4 : 2));
        const parsed = parseBlock(block);
        if (parsed) yield parsed;
      }
    }
  } finally {
    signal?.removeEventListener("abort", abort);
    // A consumer that stopped early (an error event it threw on) closes the response, so the
    // server sees the disconnect and stops the work, as for any client that goes away.
    if (!ended) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function parseBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (!line || line.startsWith(":")) continue; // a comment, e.g. a keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  const text = data.join("\n");
  try {
    return { event, data: JSON.parse(text) };
  } catch {
    return { event, data: text }; // e.g. the agent stream's final "[DONE]"
  }
}
