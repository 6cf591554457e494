// Trusted Types: the page's CSP has `require-trusted-types-for 'script'`, so the browser refuses a
// plain string at every HTML sink (innerHTML, srcdoc, …). These are the page's only two policies,
// each named in the CSP (routes_ui.py): a mistake elsewhere throws instead of injecting markup.
import DOMPurify from "./vendor/dompurify.js";

const tt = window.trustedTypes;

// Markdown from the model: whatever marked made of it, then sanitised by DOMPurify.
const markdownPolicy = tt
  ? tt.createPolicy("sandlot-markdown", { createHTML: (html) => sanitise(html) })
  : { createHTML: (html) => sanitise(html) };

// A text/html output, verbatim, for a `sandbox` iframe only (no scripts, an opaque origin): the frame,
// not sanitising, is what makes it safe, and sanitising would change what the user's code showed.
const framePolicy = tt
  ? tt.createPolicy("sandlot-frame", { createHTML: (html) => html })
  : { createHTML: (html) => html };

function sanitise(html) {
  return DOMPurify.sanitize(html, {
    USE_PROFILE: { html: true },
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select"],
    FORBID_ATTR: ["style"],
  });
}

// Links in a model's answer open in a new tab, with no opener and no referrer.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Sanitised HTML (a TrustedHTML where the browser has Trusted Types) for innerHTML. */
export const sanitisedHTML = (html) => markdownPolicy.createHTML(html);

/** HTML for the srcdoc of a sandboxed iframe, and nothing else. */
export const frameHTML = (html) => framePolicy.createHTML(html);
