// The notebook pane: a session's cells, the next-cell editor, streamed output, interrupt,
// restart and export.
import { call, callJSON, stream } from "./api.js";
import { h, saveBlob } from "./dom.js";
import { createEditor, highlighted } from "./editor.js";
import { OutputArea, plain } from "./outputs.js";
import { sessionPath } from "./sessions.js";

export class Notebook {
  constructor({ sessions, status, nonce, elements }) {
    this.sessions = sessions;
    this.status = status;
    this.el = elements;
    // The cells still streaming: element -> session id. A cell keeps running when the user switches to
    // another session (its stream goes on, out of sight); closing the page cancels it (docs/api.md).
    this.running = new Map();
    this.generation = 0; // which show() is the latest, so that a slow one does not overwrite a newer
    this.editor = createEditor(elements.editor, { labelledBy: "code-label", onRun: () => this.run(), nonce });
    elements.run.addEventListener("click", () => this.run());
    elements.interrupt.addEventListener("click", () => this.interrupt());
    elements.restart.addEventListener("click", () => this.restart());
    elements.export.addEventListener("click", () => this.export());
    sessions.onChange((id) => this.show(id));
  }

  /** Show a session's cells: its history comes from the notebook export, the one record of it. */
  async show(id) {
    const generation = ++this.generation;
    this.updateButtons();
    this.el.cells.replaceChildren();
    if (!id) return;
    try {
      const notebook = await callJSON("GET", sessionPath(id, "/notebook"));
      if (generation !== this.generation) return; // switched again meanwhile
      // Cells run since this page asked are already on it (live); the history goes before them.
      const shown = new Set([...this.el.cells.children].map((el) => el.dataset.count));
      const history = document.createDocumentFragment();
      for (const cell of notebook.cells || []) {
        if (cell.cell_type !== "code" || shown.has(String(cell.execution_count))) continue;
        const view = this.cell(plain(cell.source), cell.execution_count, history);
        for (const output of cell.outputs || []) view.outputs.add(output);
        if ((cell.outputs || []).some((o) => o.output_type === "error")) view.el.dataset.status = "error";
      }
      this.el.cells.prepend(history);
    } catch (error) {
      this.status.error(error);
    }
  }

  /** Show the session's history again (the chat ran code in it), unless a cell is streaming. */
  reload() {
    if (!this.running.size) this.show(this.sessions.current);
  }

  /** One cell: its prompt, code and outputs, appended to `parent`. */
  cell(code, count, parent = this.el.cells) {
    const prompt = h("span", { class: "prompt" }, `In [${count ?? "*"}]:`);
    const outputs = h("div", { class: "outputs" });
    const footer = h("p", { class: "cell-status" });
    const el = h("article", { class: "cell", "aria-label": `Cell ${count ?? "running"}`, dataset: { count: count ?? "" } },
      h("div", { class: "cell-head" }, prompt), highlighted(code), outputs, footer);
    parent.append(el);
    return { el, prompt, footer, outputs: new OutputArea(outputs) };
  }

  async run() {
    const code = this.editor.code;
    if (!code.trim()) return;
    let id;
    try {
      id = await this.sessions.ensure();
    } catch (error) {
      this.status.error(error);
      return;
    }
    this.editor.code = "";
    const view = this.cell(code, null);
    view.el.setAttribute("aria-busy", "true");
    view.el.scrollIntoView({ block: "nearest" });
    this.running.set(view.el, id);
    this.updateButtons();
    let result = null;
    try {
      // Calls to one session run in order on the server, so several cells may be queued at once.
      await stream(sessionPath(id, "/execute"), { code, stream: true }, (event, data) => {
        if (event === "stdout" || event === "stderr") view.outputs.stream(data.name, data.text);
        else if (event === "output") view.outputs.add(data);
        else if (event === "error" && data.output_type === "error") view.outputs.add(data);
        else if (event === "error") throw Object.assign(new Error(data.error?.message || "the run failed"), data.error);
        else if (event === "done") result = data;
      });
      if (result) this.finish(view, result, id);
      else view.footer.textContent = "The stream ended without a result.";
    } catch (error) {
      if (!result && !this.editor.code) this.editor.code = code; // refused (a quota, say): keep the code to retry
      view.footer.textContent = `Failed: ${error.message}`;
      view.footer.classList.add("failed");
      this.status.error(error);
    } finally {
      view.el.removeAttribute("aria-busy");
      this.running.delete(view.el);
      this.updateButtons();
    }
  }

  finish(view, result, id) {
    view.prompt.textContent = `In [${result.execution_count}]:`;
    view.el.setAttribute("aria-label", `Cell ${result.execution_count}`);
    view.el.dataset.count = result.execution_count;
    view.el.dataset.status = result.status;
    const notes = [result.status, `${Math.round(result.duration_ms)} ms`];
    if (result.restarted) notes.push("fresh interpreter (the previous one was killed)");
    if (result.truncated) notes.push("output truncated");
    if (result.resumed) {
      const lost = (result.resumed.lost || []).map((l) => `${l.name} (${l.reason})`);
      notes.push(`resumed: ${(result.resumed.restored || []).length} restored${lost.length ? `, lost ${lost.join(", ")}` : ""}`);
    }
    view.footer.replaceChildren(h("span", { class: `badge status-${result.status}` }, notes[0]), ` ${notes.slice(1).join(" · ")}`);
    this.el.prompt.textContent = `In [ ]:`;
    this.sessions.noteExecuted(id, result.execution_count);
  }

  updateButtons() {
    const current = this.sessions.current;
    this.el.interrupt.disabled = ![...this.running.values()].includes(current);
  }

  async interrupt() {
    const id = this.sessions.current;
    if (!id) return;
    try {
      await call("POST", sessionPath(id, "/interrupt"));
      this.status.say("Interrupted the running cell.");
    } catch (error) {
      this.status.error(error);
    }
  }

  /**
   * Restart: a fresh interpreter with the same files, as Jupyter's restart gives. The API has no
   * restart route, so this is made of routes it has: a new session, the old one's workspace
   * copied into it file by file, then the old session deleted. The session's id changes; the
   * old one is kept if anything fails on the way.
   */
  async restart() {
    const old = this.sessions.current;
    if (!old) return;
    this.el.restart.disabled = true;
    let fresh = null;
    try {
      const { files } = await callJSON("GET", sessionPath(old, "/files"));
      fresh = (await callJSON("POST", "v1/sessions", { json: {} })).id;
      for (const file of files) {
        const path = filePath(file.path);
        const data = await (await call("GET", sessionPath(old, `/files/${path}`))).blob();
        await call("PUT", sessionPath(fresh, `/files/${path}`), { body: data });
      }
      await call("DELETE", sessionPath(old));
      await this.sessions.refresh();
      this.sessions.select(fresh);
      this.status.say(`Restarted: a fresh interpreter in ${fresh}, with the ${files.length} file(s) of ${old}.`);
    } catch (error) {
      if (fresh) await call("DELETE", sessionPath(fresh)).catch(() => {});
      this.status.error(error, "Restart failed; the session is unchanged");
    } finally {
      this.el.restart.disabled = false;
    }
  }

  async export() {
    const id = this.sessions.current;
    if (!id) return;
    try {
      const response = await call("GET", sessionPath(id, "/notebook"));
      saveBlob(new Blob([await response.arrayBuffer()], { type: "application/x-ipynb+json" }), `${id}.ipynb`);
    } catch (error) {
      this.status.error(error);
    }
  }
}

/** A workspace path for a URL: each segment escaped, the slashes kept. */
export const filePath = (path) => path.split("/").map(encodeURIComponent).join("/");
