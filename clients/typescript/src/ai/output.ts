/**
 * What a model reads of a run: ordered text and image parts.
 *
 * The same rules as the Python integrations (`sandlot.integrations._core.output`),
 * so a model sees a run alike through either SDK: stdout, stderr (marked),
 * values (`Out[n]: ...`), images and the traceback, in the order they
 * happened; bracketed notes for a limit, cut output, a restart; the text kept
 * within a budget (the head and tail of long output survive).
 */

import type { ExecutionResult, Output } from "../types.js";

/** Text for the model. */
export interface TextPart {
  type: "text";
  text: string;
}

/** An image the run produced (a figure, a displayed image): base64 `data` of `mediaType`. */
export interface ImagePart {
  type: "image";
  data: string;
  mediaType: string;
  width?: number;
  height?: number;
}

export type ToolPart = TextPart | ImagePart;

/** Image types sent back as images (the ones model providers accept), in order of preference. */
export const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"] as const;
export const DEFAULT_MAX_CHARS = 20_000;
export const NO_OUTPUT =
  "[no output: the code ran without printing anything. print() values, or end the code with an expression to see it]";
const RESTARTED = "[the session's interpreter was restarted before this code ran (the previous one hit a limit or " +
  "crashed): variables and imports from earlier calls are gone; files are kept]";
const TRUNCATED = "[output truncated: the run printed more than the output limit and the rest was dropped; print " +
  "less, or write large results to a file]";
const STOPPED: Partial<Record<ExecutionResult["status"], string>> = {
  timeout: "it reached its time limit",
  memory: "it ran out of memory",
  killed: "it was killed (it hit a resource limit, or the sandbox was stopped)",
};

/** The parts of a run, in order, never empty; text within `maxChars` in all. */
export function resultParts(result: ExecutionResult, maxChars = DEFAULT_MAX_CHARS, notes: string[] = []): ToolPart[] {
  const pieces: ToolPart[] = notes.map(text);
  if (result.restarted) pieces.push(text(RESTARTED));
  const said: string[] = [];
  let shownError = false;
  for (const out of result.outputs as Output[]) {
    if (out.output_type === "stream") {
      said.push(out.text);
      pieces.push(text(out.name === "stdout" ? out.text : "[stderr]\n" + trimNewlines(out.text)));
    } else if (out.output_type === "execute_result") {
      const prefix = out.execution_count !== null && out.execution_count !== undefined ? `Out[${out.execution_count}]: ` : "";
      pieces.push(...bundle(out.data, prefix));
    } else if (out.output_type === "display_data") {
      pieces.push(...bundle(out.data));
    } else if (out.output_type === "error") {
      shownError = true;
      pieces.push(...error(out.ename, out.evalue, out.traceback, said));
    }
  }
  if (result.error && !shownError) pieces.push(...error(result.error.ename, result.error.evalue, result.error.traceback, said));
  const stopped = STOPPED[result.status];
  if (stopped && !said.some((t) => t.includes("[sandlot]"))) pieces.push(text(`[the run was stopped: ${stopped}]`));
  if (result.truncated) pieces.push(text(TRUNCATED));
  const parts = fit(merge(pieces), maxChars);
  return parts.length ? parts : [text(NO_OUTPUT)];
}

/** `640x480 PNG image`, for a model that cannot be shown the image itself. */
export function describeImage(image: ImagePart): string {
  const kind = image.mediaType.replace(/^image\//, "").toUpperCase();
  const size = image.width && image.height ? `${image.width}x${image.height} ` : "";
  return `${size}${kind} image`;
}

function text(value: string): TextPart {
  return { type: "text", text: value };
}

function trimNewlines(value: string): string {
  return value.replace(/^\n+|\n+$/g, "");
}

function error(ename: string, evalue: string, traceback: string[], said: string[]): ToolPart[] {
  if (traceback.length) return [text(traceback.join("\n"))];
  if (evalue && said.some((t) => t.includes(evalue))) return []; // a limit the server already explained on stderr
  return [text(evalue ? `${ename}: ${evalue}` : ename)];
}

/**
 * A MIME bundle: its image if it has one (its text/plain is then a repr like
 * `<Figure size 640x480 with 1 Axes>`), else its plain text.
 */
function bundle(data: Record<string, unknown>, prefix = ""): ToolPart[] {
  for (const mime of IMAGE_TYPES) {
    if (mime in data) {
      const encoded = joined(data[mime]).replace(/\s+/g, "");
      if (isBase64(encoded)) {
        const image: ImagePart = { type: "image", data: encoded, mediaType: mime, ...pngSize(encoded, mime) };
        return [...(prefix ? [text(prefix.trimEnd())] : []), image];
      }
    }
  }
  for (const mime of ["text/plain", "text/markdown", "application/json"]) {
    if (mime in data) {
      const value = data[mime];
      const shown = mime === "application/json" && typeof value !== "string" ? JSON.stringify(value) : joined(value);
      return [text(prefix + shown)];
    }
  }
  const kinds = Object.keys(data).sort();
  return kinds.length ? [text(prefix + `[a display of type ${kinds.join(", ")}, which has no text form]`)] : [];
}

/** nbformat allows a multiline string as a list of lines. */
function joined(value: unknown): string {
  return Array.isArray(value) ? value.map(String).join("") : String(value);
}

function isBase64(value: string): boolean {
  if (!value || value.length % 4 === 1 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return false;
  try {
    atob(value);
    return true;
  } catch {
    return false;
  }
}

/** Width and height from a PNG's header. */
function pngSize(encoded: string, mime: string): { width?: number; height?: number } {
  if (mime !== "image/png") return {};
  let head: string;
  try {
    head = atob(encoded.slice(0, 32));
  } catch {
    return {};
  }
  if (head.length < 24 || !head.startsWith("\x89PNG\r\n\x1a\n")) return {};
  const int = (at: number) => ((head.charCodeAt(at) << 24) >>> 0) + (head.charCodeAt(at + 1) << 16) +
    (head.charCodeAt(at + 2) << 8) + head.charCodeAt(at + 3);
  return { width: int(16), height: int(20) };
}

/** Join adjacent texts (one per line), drop empty ones. */
function merge(pieces: ToolPart[]): ToolPart[] {
  const merged: ToolPart[] = [];
  for (const piece of pieces) {
    if (piece.type === "text") {
      const value = trimNewlines(piece.text);
      if (!value.trim()) continue;
      const last = merged[merged.length - 1];
      if (last?.type === "text") {
        last.text += "\n" + value;
        continue;
      }
      merged.push(text(value));
    } else {
      merged.push(piece);
    }
  }
  return merged;
}

/** Cut the texts to `budget` characters in all, each in proportion to its length, keeping heads and tails. */
function fit(parts: ToolPart[], budget: number): ToolPart[] {
  const total = parts.reduce((n, p) => n + (p.type === "text" ? p.text.length : 0), 0);
  if (total <= budget) return parts;
  return parts.map((p) => p.type === "text"
    ? text(cut(p.text, Math.max(200, Math.floor((budget * p.text.length) / total)))) : p);
}

function cut(value: string, budget: number): string {
  if (value.length <= budget) return value;
  const keep = Math.max(budget - 100, 100);
  const head = value.slice(0, Math.floor((keep * 2) / 3));
  const tail = value.slice(value.length - Math.floor(keep / 3));
  const leftOut = value.length - head.length - tail.length;
  return `${head}\n[... ${leftOut} characters left out; print less, or write large output to a file and read parts ...]\n${tail}`;
}
