// The chat pane: the agent endpoint (POST /v1/chat/completions, streamed), in the current session.
// Each code step shows as a collapsible cell with its result; the answer is sanitised Markdown;
// the stop reason closes each turn.
import { callJSON, stream } from "./api.js";
import { h } from "./dom.js";
import { highlighted } from "./editor.js";
import { renderMarkdown } from "./markdown.js";
import { OutputArea } from "./outputs.js";

const STOP_REASONS = {
  answer: "the model answered", max_steps: "the step limit was reached", time_limit: "the time limit was reached",
  repeated_failure: "the same code kept failing", client_tool: "the model called a tool of yours",
};

export class Chat {
  constructor({ sessions, status, elements, onTurnDone }) {
    this.sessions = sessions;
    this.onTurnDone = onTurnDone || (() => {});
    this.status = status;
    this.el = elements;
    this.messages = []; // the conversation so far, in OpenAI's shape
    this.controller = null;
    elements.form.addEventListener("submit", (event) => { event.preventDefault(); this.send(); });
    elements.message.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); this.send(); }
    });
    elements.stop.addEventListener("click", () => this.controller?.abort());
    elements.newChat.addEventListener("click", () => this.reset());
    // A conversation's code ran in one session; in another, its variables would not be there.
    sessions.onChange(() => this.reset());
  }

  reset() {
    this.controller?.abort();
    this.messages = [];
    this.el.conversation.replaceChildren();
    this.el.where.textContent = this.sessions.current ? `Code runs in ${this.sessions.current}.` : "";
  }

  async loadModels() {
    const { data } = await callJSON("GET", "v1/models");
    this.el.model.replaceChildren(...data.map((m) => h("option", { value: m.id }, m.id)));
    const none = data.length === 0;
    this.el.send.disabled = none;
    if (none) this.el.where.textContent = "No model is configured: start the server with --model-url and --model.";
  }

  async send() {
    const text = this.el.message.value.trim();
    if (!text || this.controller) return;
    let sessionId;
    try {
      sessionId = await this.sessions.ensure();
    } catch (error) {
      this.status.error(error);
      return;
    }
    this.el.where.textContent = `Code runs in ${sessionId}.`;
    this.el.message.value = "";
    this.messages.push({ role: "user", content: text });
    this.el.conversation.append(h("div", { class: "message user" }, h("p", { class: "who" }, "You"), h("p", {}, text)));
    const turn = new Turn(this.el.conversation);
    this.controller = new AbortController();
    this.el.send.disabled = true;
    this.el.stop.disabled = false;
    try {
      await stream("v1/chat/completions", {
        model: this.el.model.value || undefined, messages: this.messages, stream: true, session_id: sessionId,
      }, (_event, data) => turn.handle(data), this.controller.signal);
      this.messages.push({ role: "assistant", content: turn.text() });
    } catch (error) {
      if (this.controller.signal.aborted) turn.stopped("you stopped it");
      else { turn.failed(error.message); this.status.error(error); }
      this.messages.pop(); // the model did not answer it: do not send the question twice
    } finally {
      turn.done();
      this.controller = null;
      this.el.send.disabled = this.el.model.options.length === 0;
      this.el.stop.disabled = true;
      this.onTurnDone(); // the steps ran in the session: its cells and files changed
    }
  }
}

/** One assistant turn as it streams: text pieces and code steps in the order they came. */
class Turn {
  constructor(parent) {
    this.body = h("div", { class: "turn-body" });
    this.footer = h("p", { class: "stop-reason" });
    this.el = h("div", { class: "message assistant", "aria-busy": "true" }, h("p", { class: "who" }, "Assistant"), this.body, this.footer);
    parent.append(this.el);
    this.segments = [];
    this.live = null; // the text segment the next delta extends
  }

  handle(data) {
    if (data === "[DONE]") return;
    if (data.error) throw Object.assign(new Error(data.error.message), data.error);
    if (data.sandlot?.step) {
      this.live = null;
      this.body.append(stepView(data.sandlot.step));
    }
    for (const choice of data.choices || []) {
      if (choice.delta?.content) this.append(choice.delta.content);
      if (choice.delta?.tool_calls) this.body.append(toolCallsView(choice.delta.tool_calls));
      if (choice.finish_reason && data.sandlot) this.finish(data.sandlot);
    }
  }

  append(piece) {
    if (!this.live) {
      this.live = { text: "", el: h("div", { class: "answer" }) };
      this.segments.push(this.live);
      this.body.append(this.live.el);
    }
    this.live.text += piece;
    // Re-rendered whole as it grows: Markdown read in pieces would be wrong halfway through a table.
    this.live.el.replaceChildren(renderMarkdown(this.live.text));
  }

  text() { return this.segments.map((s) => s.text).join("\n\n"); }

  finish(summary) {
    const reason = summary.stop_reason;
    this.footer.replaceChildren(h("span", { class: `badge stop-${reason}` }, `Stop reason: ${reason}`),
      ` ${STOP_REASONS[reason] || ""} · ${summary.steps?.length ?? 0} step(s), ${summary.model_calls} model call(s)`);
  }

  stopped(why) { this.footer.textContent = `Stopped: ${why}.`; }
  failed(message) { this.footer.textContent = `Failed: ${message}`; this.footer.classList.add("failed"); }
  done() { this.el.removeAttribute("aria-busy"); }
}

/** A code step: collapsed to its status line, open for code and result. */
function stepView(step) {
  const outputs = h("div", { class: "outputs" });
  const area = new OutputArea(outputs);
  // The step's outputs hold its streams and rich outputs in order; older servers sent only stdout/stderr.
  if (step.outputs?.length) for (const output of step.outputs) area.add(output);
  else {
    if (step.stdout) area.stream("stdout", step.stdout);
    if (step.stderr) area.stream("stderr", step.stderr);
    if (step.error) area.add({ output_type: "error", ...step.error });
  }
  const ms = step.duration_ms != null ? ` · ${Math.round(step.duration_ms)} ms` : "";
  return h("details", { class: `step status-${step.status}` },
    h("summary", {}, `Step ${step.index}: `, h("span", { class: `badge status-${step.status}` }, step.status), ms,
      h("code", { class: "step-preview" }, firstLine(step.code || ""))),
    highlighted(step.code || ""), outputs);
}

function toolCallsView(calls) {
  return h("div", { class: "tool-calls" }, h("p", {}, "The model called tools you defined:"),
    ...calls.map((c) => h("pre", { class: "plain" }, `${c.function?.name}(${c.function?.arguments})`)));
}

function firstLine(code) {
  const line = code.trim().split("\n")[0];
  return line.length > 60 ? `${line.slice(0, 57)}…` : line;
}
