// The header: the server's health, isolation level and environments, and the API key form.
import { apiKey, callJSON, health } from "./api.js";
import { h } from "./dom.js";

const HEALTH_EVERY_MS = 10_000;

export class Header {
  constructor({ status, elements, onKeyChange }) {
    this.status = status;
    this.el = elements;
    elements.keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      apiKey.set(elements.key.value.trim());
      this.showKey();
      onKeyChange();
    });
    elements.forget.addEventListener("click", () => {
      apiKey.set("");
      this.showKey();
      onKeyChange();
    });
    this.showKey();
  }

  /** The field never shows a stored key back: it says whether one is set. */
  showKey() {
    const set = Boolean(apiKey.get());
    this.el.key.value = "";
    this.el.key.placeholder = set ? "key set for this tab" : "none needed on loopback";
    this.el.forget.disabled = !set;
  }

  start() {
    this.poll();
    setInterval(() => this.poll(), HEALTH_EVERY_MS);
  }

  async poll() {
    try {
      const { ok, body } = await health();
      this.el.health.textContent = body.status || (ok ? "ok" : "unavailable");
      this.el.health.className = `badge ${ok ? "health-ok" : "health-bad"}`;
      this.el.health.title = ok ? `${body.sessions} session(s), ${body.sandboxes_alive} sandbox(es) alive, ${body.pool_ready} ready`
        : (body.error?.message || body.reason || "");
      this.el.isolation.textContent = body.isolation || "unknown";
      this.el.version.textContent = body.version || "";
    } catch {
      this.el.health.textContent = "unreachable";
      this.el.health.className = "badge health-bad";
    }
  }

  /** GET /v1/environments, where the server has it (environments are a later feature): hidden otherwise. */
  async loadEnvironments() {
    try {
      const { environments } = await callJSON("GET", "v1/environments");
      this.el.environments.replaceChildren(...environments.map((env) =>
        h("span", { class: `env${env.default ? " default" : ""}`, title: `Python ${env.python}; preloads ${(env.preload || []).join(", ") || "nothing"}` },
          env.name, env.default ? " (default)" : "")));
      this.el.environmentsItem.hidden = environments.length === 0;
    } catch {
      this.el.environmentsItem.hidden = true;
    }
  }
}
