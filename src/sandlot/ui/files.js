// The files pane: the current session's workspace. Upload (drag and drop, or a file picker),
// download and delete, through the session's file routes.
import { call, callJSON } from "./api.js";
import { formatBytes, h, saveBlob } from "./dom.js";
import { filePath } from "./notebook.js";
import { sessionPath } from "./sessions.js";

export class Files {
  constructor({ sessions, status, elements }) {
    this.sessions = sessions;
    this.status = status;
    this.el = elements;
    const zone = elements.dropZone;
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      this.upload([...(event.dataTransfer?.files || [])]);
    });
    elements.choose.addEventListener("click", () => elements.input.click());
    elements.input.addEventListener("change", () => {
      this.upload([...elements.input.files]);
      elements.input.value = "";
    });
    elements.refresh.addEventListener("click", () => this.refresh());
    sessions.onChange(() => this.refresh());
  }

  async refresh() {
    const id = this.sessions.current;
    if (!id) { this.render([]); return; }
    try {
      const { files } = await callJSON("GET", sessionPath(id, "/files"));
      if (this.sessions.current === id) this.render(files);
    } catch (error) {
      this.status.error(error);
    }
  }

  render(files) {
    this.el.rows.replaceChildren(...files.map((file) => h("tr", {},
      h("th", { scope: "row" }, file.path),
      h("td", { class: "number" }, formatBytes(file.size)),
      h("td", {}, h("time", { datetime: file.modified_at }, new Date(file.modified_at).toLocaleString())),
      h("td", { class: "actions" },
        h("button", { type: "button", "aria-label": `Download ${file.path}`, onclick: () => this.download(file.path) }, "Download"),
        h("button", { type: "button", class: "danger", "aria-label": `Delete ${file.path}`, onclick: () => this.remove(file.path) }, "Delete")))));
    this.el.empty.hidden = files.length > 0;
  }

  async upload(files) {
    if (!files.length) return;
    try {
      const id = await this.sessions.ensure();
      for (const file of files) {
        // The raw bytes are the body; the file's name is its path in the workspace.
        await call("PUT", sessionPath(id, `/files/${filePath(file.name)}`), { body: file });
      }
      this.status.say(`Uploaded ${files.map((f) => f.name).join(", ")}.`);
    } catch (error) {
      this.status.error(error, "Upload failed");
    }
    await this.refresh();
  }

  async download(path) {
    try {
      const response = await call("GET", sessionPath(this.sessions.current, `/files/${filePath(path)}`));
      saveBlob(await response.blob(), path.split("/").pop());
    } catch (error) {
      this.status.error(error);
    }
  }

  async remove(path) {
    try {
      await call("DELETE", sessionPath(this.sessions.current, `/files/${filePath(path)}`));
      this.status.say(`Deleted ${path}.`);
    } catch (error) {
      this.status.error(error);
    }
    await this.refresh();
  }
}
