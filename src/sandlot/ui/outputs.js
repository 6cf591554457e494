// Rendering Jupyter (nbformat v4) outputs. The trust boundary of the page: everything here came
// from code a model wrote, run in a sandbox, and is hostile.
//  - Text is text (textContent), never markup.
//  - text/html goes into an <iframe sandbox> (no scripts, an opaque origin: it cannot reach the
//    page, its storage or the key), which also inherits the page's CSP (no network but this origin).
//  - Images only as data: URLs of image MIME types, after checking the payload is base64.
//  - text/markdown is rendered and sanitised (markdown.js).
import { h } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { frameHTML } from "./trusted.js";

const FRAME_CSS = new URL("./frame.css", import.meta.url).href;
// Jupyter's order of preference, less what we never run (application/javascript) and with LaTeX,
// which we can only show as its source, last.
const PREFERENCE = ["text/html", "text/markdown", "image/svg+xml", "image/png", "image/jpeg", "image/gif",
  "image/webp", "application/json", "text/plain", "text/latex"];
const BASE64_IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const ANSI = /\x1b\[[0-9;?]*[ -\/]*[@-~]/g;

/** nbformat allows a multi-line string as a list of lines. */
const joined = (value) => (Array.isArray(value) ? value.join("") : String(value ?? ""));
export const plain = (text) => joined(text).replace(ANSI, "");

/** The output nodes of one cell, as outputs arrive; stdout/stderr pieces that follow each other
 *  join one block, as in Jupyter. */
export class OutputArea {
  constructor(element) {
    this.el = element;
    this.lastStream = null;
  }

  clear() {
    this.el.replaceChildren();
    this.lastStream = null;
  }

  stream(name, text) {
    if (this.lastStream?.dataset.name !== name) {
      this.lastStream = h("pre", { class: `stream ${name === "stderr" ? "stderr" : "stdout"}`, dataset: { name } });
      this.el.append(this.lastStream);
    }
    this.lastStream.append(plain(text));
  }

  /** Any nbformat output object. */
  add(output) {
    if (output.output_type === "stream") {
      this.stream(output.name, output.text);
      return;
    }
    this.lastStream = null;
    this.el.append(renderOutput(output));
  }
}

/** One non-stream output as a node. */
export function renderOutput(output) {
  switch (output.output_type) {
    case "error": return renderError(output);
    case "execute_result":
      return h("div", { class: "output result" },
        h("span", { class: "prompt out" }, `Out[${output.execution_count ?? " "}]:`), renderBundle(output.data || {}));
    case "display_data": return h("div", { class: "output display" }, renderBundle(output.data || {}));
    case "stream": return h("pre", { class: `stream ${output.name}` }, plain(output.text));
    default: return h("pre", { class: "output unknown" }, JSON.stringify(output, null, 2));
  }
}

/** An error: its name and value, then the traceback. */
export function renderError({ ename, evalue, traceback }) {
  const lines = (traceback || []).map(plain);
  return h("div", { class: "output error", role: "group", "aria-label": `Error: ${plain(ename)}` },
    h("p", { class: "error-head" }, h("strong", {}, plain(ename)), evalue ? `: ${plain(evalue)}` : ""),
    lines.length ? h("pre", { class: "traceback" }, lines.join("\n")) : null);
}

/** The richest part of a MIME bundle that we can show safely. */
export function renderBundle(data) {
  for (const mime of PREFERENCE) {
    if (!(mime in data)) continue;
    const node = renderMime(mime, data[mime], data);
    if (node) return node;
  }
  return h("pre", { class: "plain" }, `[output of type ${Object.keys(data).join(", ") || "none"}]`);
}

function renderMime(mime, value, bundle) {
  const alt = bundle["text/plain"] ? plain(bundle["text/plain"]) : "figure";
  if (mime === "text/html") return htmlFrame(joined(value));
  if (mime === "text/markdown") return renderMarkdown(joined(value), "markdown output-markdown");
  if (mime === "image/svg+xml") return image(mime, utf8Base64(joined(value)), alt);
  if (BASE64_IMAGES.has(mime)) {
    const payload = joined(value).replace(/\s+/g, "");
    return /^[A-Za-z0-9+/]*={0,2}$/.test(payload) ? image(mime, payload, alt) : null;
  }
  if (mime === "application/json") return h("pre", { class: "plain json" }, JSON.stringify(value, null, 2));
  return h("pre", { class: "plain" }, plain(value));
}

function image(mime, base64, alt) {
  return h("img", { class: "figure", src: `data:${mime};base64,${base64}`, alt });
}

function utf8Base64(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** HTML output in a frame with every sandbox restriction: `sandbox=""` allows nothing (no
 *  scripts, no forms, no popups, no top navigation, and a unique opaque origin). */
function htmlFrame(html) {
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "");
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.setAttribute("title", "HTML output");
  frame.className = "html-output";
  // No script can measure the content in a sandbox without scripts; guess from its rows and lines
  // (the frame is resizable).
  const rows = (html.match(/<tr[\s>]/gi) || []).length + (html.match(/<(br|p|div|li|h\d)[\s>]/gi) || []).length;
  frame.style.height = `${Math.min(480, Math.max(48, 28 + rows * 26))}px`;
  frame.srcdoc = frameHTML(`<!doctype html><meta charset="utf-8"><link rel="stylesheet" href="${FRAME_CSS}">${html}`);
  return frame;
}
