// The code editor (CodeMirror 6, Python) and the same highlighting for code already run.
import {
  EditorState, EditorView, Prec, bracketMatching, classHighlighter, closeBrackets, closeBracketsKeymap,
  defaultKeymap, drawSelection, highlightCode, highlightSpecialChars, history, historyKeymap, indentOnInput,
  indentUnit, indentWithTab, keymap, python, pythonLanguage, syntaxHighlighting,
} from "./vendor/codemirror.js";

/**
 * An editor in `parent`, named for assistive technology by the element `labelledBy`.
 * Shift+Enter (or Ctrl/Cmd+Enter) calls onRun. Tab indents; Escape then Tab moves focus on
 * (CodeMirror's own escape hatch), so the editor is no keyboard trap.
 * `nonce`: the page's CSP nonce; CodeMirror puts it on the <style> element it injects.
 */
export function createEditor(parent, { labelledBy, onRun, nonce }) {
  const run = () => { onRun(); return true; };
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: "",
      extensions: [
        Prec.highest(keymap.of([{ key: "Shift-Enter", run }, { key: "Mod-Enter", run }])),
        history(), drawSelection(), highlightSpecialChars(), indentOnInput(), bracketMatching(), closeBrackets(),
        python(), syntaxHighlighting(classHighlighter), indentUnit.of("    "), EditorState.tabSize.of(4),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, indentWithTab]),
        EditorView.contentAttributes.of({ "aria-labelledby": labelledBy }),
        EditorView.cspNonce.of(nonce || ""),
        EditorView.lineWrapping,
      ],
    }),
  });
  return {
    view,
    get code() { return view.state.doc.toString(); },
    set code(text) { view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }); },
    focus() { view.focus(); },
  };
}

/** A <pre><code> of Python, highlighted with the editor's classes (tok-keyword, tok-string, …). */
export function highlighted(code) {
  const codeEl = document.createElement("code");
  highlightCode(code, pythonLanguage.parser.parse(code), classHighlighter,
    (text, classes) => {
      if (!classes) { codeEl.append(text); return; }
      const span = document.createElement("span");
      span.className = classes;
      span.textContent = text;
      codeEl.append(span);
    },
    () => codeEl.append("\n"));
  const pre = document.createElement("pre");
  pre.className = "code";
  pre.append(codeEl);
  return pre;
}
