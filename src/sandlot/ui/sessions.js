// The sessions list: create, switch, delete; the current session is what the panes work on.
import { callJSON } from "./api.js";
import { h } from "./dom.js";

const CURRENT_STORAGE = "sandlot.session";

export class Sessions {
  constructor({ list, newButton, status }) {
    this.listEl = list;
    this.status = status;
    this.sessions = [];
    this.current = sessionStorage.getItem(CURRENT_STORAGE) || null;
    this.listeners = [];
    newButton.addEventListener("click", () => this.create().catch((e) => status.error(e)));
  }

  /** Call listener(id) whenever the current session changes (id may be null). */
  onChange(listener) { this.listeners.push(listener); }

  async refresh() {
    const { sessions } = await callJSON("GET", "v1/sessions");
    this.sessions = sessions;
    if (this.current && !sessions.some((s) => s.id === this.current)) this.select(null);
    this.render();
    return sessions;
  }

  /** The current session, made if there is none, for a pane that needs one now. */
  async ensure() {
    if (this.current) return this.current;
    return this.create();
  }

  async create() {
    const session = await callJSON("POST", "v1/sessions", { json: {} });
    this.sessions.push(session);
    this.select(session.id);
    this.status.say(`Created session ${session.id}.`);
    await this.refresh().catch(() => this.render());
    return session.id;
  }

  async remove(id) {
    await callJSON("DELETE", `v1/sessions/${encodeURIComponent(id)}`);
    this.sessions = this.sessions.filter((s) => s.id !== id);
    if (this.current === id) this.select(null);
    this.render();
    this.status.say(`Deleted session ${id}.`);
  }

  select(id) {
    if (id === this.current) return;
    this.current = id;
    if (id) sessionStorage.setItem(CURRENT_STORAGE, id);
    else sessionStorage.removeItem(CURRENT_STORAGE);
    this.render();
    for (const listener of this.listeners) listener(id);
  }

  /** After a cell ran: the execution count shown in the list follows without a round trip. */
  noteExecuted(id, count) {
    const session = this.sessions.find((s) => s.id === id);
    if (session && count) { session.execution_count = count; this.render(); }
  }

  render() {
    this.listEl.replaceChildren(...this.sessions.map((s) => this.item(s)));
    if (!this.sessions.length) this.listEl.append(h("li", { class: "hint" }, "No sessions yet."));
    for (const el of document.querySelectorAll("[data-current-session]")) el.textContent = this.current || "no session";
  }

  item(session) {
    const current = session.id === this.current;
    // `state` ("running" | "paused") comes with durable sessions; shown whenever the server sends it.
    const state = session.state ? h("span", { class: `badge state-${session.state}` }, session.state) : null;
    return h("li", { class: current ? "current" : "" },
      h("button", { type: "button", class: "session", "aria-current": current ? "true" : null, title: session.id,
                    onclick: () => this.select(session.id) },
        h("span", { class: "session-id" }, session.id),
        h("span", { class: "session-meta" }, `${session.execution_count} cell${session.execution_count === 1 ? "" : "s"}`, state)),
      h("button", { type: "button", class: "icon danger", "aria-label": `Delete ${session.id}`, title: "Delete",
                    onclick: () => this.confirmRemove(session.id) }, "✕"));
  }

  confirmRemove(id) {
    if (!window.confirm(`Delete session ${id}? Its interpreter and files are gone afterwards.`)) return;
    this.remove(id).catch((e) => this.status.error(e));
  }
}

export const sessionPath = (id, rest = "") => `v1/sessions/${encodeURIComponent(id)}${rest}`;
