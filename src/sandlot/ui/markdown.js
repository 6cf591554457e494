// Markdown (the model's answers, text/markdown outputs) to sanitised DOM.
//
// Two layers, because the text is hostile: raw HTML in the Markdown is shown as text, not parsed
// (a model that writes <img onerror=…> sees it printed, and nothing reaches a parser with a
// handler in it); then what marked made of the rest is sanitised by DOMPurify (trusted.js), which
// drops javascript: links and anything else that marked lets through.
import { Marked } from "./vendor/marked.js";
import { sanitisedHTML } from "./trusted.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHTML = (text) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

// GitHub-flavoured (tables, fenced code); its own instance, so no other code's options leak in.
const markdown = new Marked({ gfm: true, async: false, renderer: { html: ({ text }) => escapeHTML(text) } });

/** A <div class="markdown"> holding `text` rendered and sanitised. */
export function renderMarkdown(text, className = "markdown") {
  const el = document.createElement("div");
  el.className = className;
  el.innerHTML = sanitisedHTML(markdown.parse(text));
  return el;
}
