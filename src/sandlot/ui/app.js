// The playground's entry point: finds the page's parts, makes the panes and wires them together.
import { ApiError, apiKey } from "./api.js";
import { $, $$ } from "./dom.js";
import { Chat } from "./chat.js";
import { Files } from "./files.js";
import { Header } from "./header.js";
import { Notebook } from "./notebook.js";
import { Sessions } from "./sessions.js";

/** The status line (a polite live region): what just happened, or what went wrong. */
class Status {
  constructor(el) { this.el = el; }
  say(text) { this.el.textContent = text; this.el.className = "status"; }
  error(error, prefix = "") {
    const unauthorized = error instanceof ApiError && error.status === 401;
    const text = unauthorized
      ? (apiKey.get() ? "The server did not accept that API key: enter another." : "This server needs an API key: enter it above.")
      : `${prefix ? `${prefix}: ` : ""}${error.message || error}`;
    this.el.textContent = text;
    this.el.className = "status error";
    if (unauthorized) $("#api-key").focus();
  }
}

/** ARIA tabs: click or arrow keys (Home/End too) switch panes; only the selected tab is in the tab order. */
function setUpTabs() {
  const tabs = $$('[role="tab"]');
  const select = (tab) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(`#${other.getAttribute("aria-controls")}`).hidden = !selected;
    }
    tab.focus();
    tab.dispatchEvent(new CustomEvent("tab-selected", { bubbles: true }));
  };
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const to = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      select(tabs[(to + tabs.length) % tabs.length]);
    });
  });
}

function main() {
  const status = new Status($("#status"));
  // The CSP nonce for the editor's <style>: readable as a property only (browsers hide the attribute).
  const nonce = $("script[nonce]")?.nonce || "";
  const sessions = new Sessions({ list: $("#session-list"), newButton: $("#new-session"), status });
  const notebook = new Notebook({ sessions, status, nonce, elements: {
    editor: $("#editor"), run: $("#run"), interrupt: $("#interrupt"), restart: $("#restart"), export: $("#export"),
    cells: $("#cells"), prompt: $("#next-prompt") } });
  const chat = new Chat({ sessions, status, elements: {
    form: $("#chat-form"), message: $("#message"), send: $("#send"), stop: $("#stop"), newChat: $("#new-chat"),
    model: $("#model"), conversation: $("#conversation"), where: $("#chat-where") },
    onTurnDone: () => { notebook.reload(); sessions.refresh().catch(() => {}); } });
  const files = new Files({ sessions, status, elements: {
    dropZone: $("#drop-zone"), input: $("#file-input"), choose: $("#choose-files"), refresh: $("#refresh-files"),
    rows: $("#file-rows"), empty: $("#files-empty") } });

  // Everything that needs the key is loaded again when the key changes.
  // aria-busy on the layout while it loads (assistive technology waits; so can a test).
  const layout = $("#layout");
  const load = async () => {
    layout.setAttribute("aria-busy", "true");
    try {
      await sessions.refresh();
      status.say(sessions.sessions.length ? "" : "Ready. Run a cell to start a session.");
      await Promise.all([notebook.show(sessions.current), files.refresh(), chat.loadModels(), header.loadEnvironments()]);
      chat.reset();
    } catch (error) {
      status.error(error);
    } finally {
      layout.removeAttribute("aria-busy");
    }
  };
  const header = new Header({ status, onKeyChange: load, elements: {
    keyForm: $("#key-form"), key: $("#api-key"), forget: $("#forget-key"), health: $("#health"),
    isolation: $("#isolation"), version: $("#version"), environments: $("#environments"),
    environmentsItem: $("#environments-item") } });

  setUpTabs();
  $("#pane-files").closest("main").addEventListener("tab-selected", (event) => {
    if (event.target.id === "tab-files") files.refresh();
  });
  header.start();
  load();
  notebook.editor.focus();
}

main();
