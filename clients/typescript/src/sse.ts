/**
 * Server-Sent Events: bytes in, raw events out.
 *
 * `SSEDecoder` follows the WHATWG "event stream interpretation" rules for the
 * fields sandlot uses (`event:`, `data:`; a blank line ends an event; `:`
 * lines are comments), fed one line at a time. `lines` cuts a byte stream into
 * lines whatever the chunking: a line (or a UTF-8 character) split across
 * chunks waits for the rest, and `\r\n`, `\n` and `\r` all end a line. An
 * event still open when the stream ends is dropped, as the spec says: without
 * its blank line it may be cut short.
 */

/** One raw event: its name (`message` when unnamed) and its data lines joined by newlines. */
export interface ServerSentEvent {
  event: string;
  data: string;
}

/** Feed it one line at a time (without its terminator); it returns an event at each blank line. */
export class SSEDecoder {
  private eventName = "";
  private data: string[] = [];

  decode(line: string): ServerSentEvent | undefined {
    if (line === "") {
      if (this.data.length === 0) {
        this.eventName = ""; // a blank line with no data dispatches nothing
        return undefined;
      }
      const event = { event: this.eventName || "message", data: this.data.join("\n") };
      this.eventName = "";
      this.data = [];
      return event;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.eventName = value;
    else if (name === "data") this.data.push(value);
    // "id" and "retry" mean nothing to a one-shot run; unknown fields are ignored, as the spec says.
    return undefined;
  }
}

/** The lines of a UTF-8 byte stream, without their terminators. */
export async function* lines(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  let afterCR = false; // the previous chunk ended in "\r": a "\n" that starts this one belongs to it
  for await (const chunk of chunks) {
    buffer += decoder.decode(chunk, { stream: true });
    if (buffer === "") continue; // an empty chunk, or part of one character: nothing to decide yet
    if (afterCR && buffer.startsWith("\n")) buffer = buffer.slice(1);
    afterCR = false;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      yield buffer.slice(start, i);
      if (c === 13) {
        if (i + 1 === buffer.length) afterCR = true;
        else if (buffer.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    buffer = buffer.slice(start);
  }
  buffer += decoder.decode();
  if (buffer) yield buffer;
}

/** Raw events from a byte stream. */
export async function* events(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<ServerSentEvent, void, undefined> {
  const decoder = new SSEDecoder();
  for await (const line of lines(chunks)) {
    const event = decoder.decode(line);
    if (event !== undefined) yield event;
  }
}
