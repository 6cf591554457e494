// What the playground uses of CodeMirror 6 and Lezer, re-exported so that esbuild
// bundles exactly this into one ES module (src/sandlot/ui/vendor/codemirror.js).
export { EditorState, Prec } from "@codemirror/state";
export { EditorView, keymap, drawSelection, highlightSpecialChars, placeholder } from "@codemirror/view";
export { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
export { bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from "@codemirror/language";
export { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
export { python, pythonLanguage } from "@codemirror/lang-python";
export { classHighlighter, highlightCode } from "@lezer/highlight";
