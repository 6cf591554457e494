// sandlotTools driven by the AI SDK's own generateText and its mock model (`ai/test`), with the
// tools running for real on the test server: the model's tool calls run Python, and what comes
// back to the model (text, image parts) is read from the prompt of its next call.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { generateText, stepCountIs } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { Client } from "sandlot";
import { type SandlotToolOutput, sandlotTools } from "sandlot/ai";

import { client, URL } from "./helpers.js";

type LanguageModelV3CallOptions = Parameters<MockLanguageModelV3["doGenerate"]>[0];
type LanguageModelV3GenerateResult = Awaited<ReturnType<MockLanguageModelV3["doGenerate"]>>;

const USAGE = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};

function toolCall(id: string, toolName: string, input: unknown): LanguageModelV3GenerateResult {
  return { content: [{ type: "tool-call", toolCallId: id, toolName, input: JSON.stringify(input) }],
           finishReason: { unified: "tool-calls", raw: "tool_calls" }, usage: USAGE, warnings: [] };
}

function answer(text: string): LanguageModelV3GenerateResult {
  return { content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage: USAGE, warnings: [] };
}

/** The output of the last tool result the model was sent. */
function lastToolOutput(options: LanguageModelV3CallOptions): unknown {
  const tool = options.prompt.filter((m) => m.role === "tool").at(-1);
  assert.ok(tool, "the model was sent a tool result");
  const part = tool.content.filter((p) => p.type === "tool-result").at(-1);
  assert.ok(part);
  return part.output;
}

/** The text parts of a content output, joined. */
function textOf(output: unknown): string {
  const value = (output as { type: string; value: Array<{ type: string; text?: string }> });
  assert.equal(value.type, "content");
  return value.value.filter((p) => p.type === "text").map((p) => p.text).join("\n");
}

/** A mock model that makes the given replies in turn; the last is computed from what it was sent. */
type Reply = LanguageModelV3GenerateResult | ((options: LanguageModelV3CallOptions) => LanguageModelV3GenerateResult);

function scripted(...replies: Reply[]) {
  const sent: LanguageModelV3CallOptions[] = [];
  const model = new MockLanguageModelV3({
    doGenerate: async (options) => {
      sent.push(options);
      const reply = replies[sent.length - 1];
      assert.ok(reply, `the model was called ${sent.length} times, more than scripted`);
      return typeof reply === "function" ? reply(options) : reply;
    },
  });
  return { model, sent };
}

describe("sandlotTools in generateText", () => {
  test("two tool calls in a session, and the model gets the computed value back", async () => {
    const c = client();
    const session = await c.createSession();
    try {
      const { model, sent } = scripted(
        toolCall("call-1", "run_in_session", { code: "x = 6 * 7" }),
        toolCall("call-2", "run_in_session", { code: "print(x)" }),
        (options) => answer(`The value is ${textOf(lastToolOutput(options)).trim()}.`),
      );
      const result = await generateText({ model, tools: sandlotTools({ client: c, session }), stopWhen: stepCountIs(5),
                                          prompt: "Compute 6 * 7 in Python." });
      assert.equal(result.text, "The value is 42.");
      assert.equal(result.steps.length, 3);
      assert.equal(sent.length, 3);
      // The tools were offered with their schemas.
      const offered = (sent[0]?.tools ?? []).map((t) => t.name).sort();
      assert.deepEqual(offered, ["run_in_session", "run_python"]);
      // The first call printed nothing: the model is told so, rather than sent nothing.
      assert.match(textOf(lastToolOutput(sent[1] as LanguageModelV3CallOptions)), /no output/);
      const outputs = result.steps.flatMap((s) => s.toolResults).map((r) => r.output as SandlotToolOutput);
      assert.deepEqual(outputs.map((o) => [o.tool, o.isError, o.result?.status]),
                       [["run_in_session", false, "ok"], ["run_in_session", false, "ok"]]);
      assert.equal(outputs[1]?.result?.stdout, "42\n");
      // The state lives in the session, which is still ours.
      const x = await session.execute("x");
      assert.deepEqual(x.outputs[0]?.output_type === "execute_result" && x.outputs[0].data, { "text/plain": "42" });
    } finally {
      await session.close();
    }
  });

  test("an image the code shows reaches a vision model as an image part", async () => {
    // A real 1x1 PNG, shown through the display protocol (no matplotlib needed in the sandbox).
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";
    const code = `import base64\nclass Dot:\n    def _repr_png_(self):\n        return base64.b64decode('${png}')\n` +
      "print('before')\ndisplay(Dot())\nprint('after')";
    const run = async (images: boolean) => {
      const { model, sent } = scripted(toolCall("call-1", "run_python", { code }), answer("I see a dot."));
      await generateText({ model, tools: sandlotTools({ client: client(), images }), stopWhen: stepCountIs(3), prompt: "Draw." });
      return lastToolOutput(sent[1] as LanguageModelV3CallOptions) as { type: string; value: unknown[] };
    };
    const vision = await run(true);
    assert.deepEqual(vision, { type: "content", value: [
      { type: "text", text: "before" }, { type: "image-data", data: png, mediaType: "image/png" },
      { type: "text", text: "after" }] });
    const blind = await run(false);
    assert.deepEqual(blind.value[1], { type: "text", text: "[image 1: 1x1 PNG image; it cannot be shown in this result]" });
  });

  test("a failing run is a result the model reads, traceback and all", async () => {
    const { model, sent } = scripted(toolCall("call-1", "run_python", { code: "1 / 0" }), answer("Oops."));
    const result = await generateText({ model, tools: sandlotTools({ client: client() }), stopWhen: stepCountIs(3), prompt: "x" });
    const output = result.steps[0]?.toolResults[0]?.output as SandlotToolOutput;
    assert.equal(output.isError, true);
    assert.equal(output.result?.status, "error");
    assert.match(textOf(lastToolOutput(sent[1] as LanguageModelV3CallOptions)), /ZeroDivisionError/);
  });

  test("a call the model can fix comes back as a message for it", async () => {
    const { model, sent } = scripted(toolCall("call-1", "run_python", { code: "print(1)", timeout: 100_000 }), answer("ok"));
    await generateText({ model, tools: sandlotTools({ client: client() }), stopWhen: stepCountIs(3), prompt: "x" });
    assert.match(textOf(lastToolOutput(sent[1] as LanguageModelV3CallOptions)), /timeout/);
  });

  test("the file tools list, write and read the session's workspace", async () => {
    const c = client();
    const session = await c.createSession();
    try {
      await session.files.upload("data.csv", "a,b\n1,2\n");
      const { model, sent } = scripted(
        toolCall("c1", "write_file", { path: "notes/plan.txt", content: "step one ✓" }),
        toolCall("c2", "list_files", {}),
        toolCall("c3", "read_file", { path: "notes/plan.txt" }),
        toolCall("c4", "read_file", { path: "missing.txt" }),
        answer("done"),
      );
      await generateText({ model, tools: sandlotTools({ client: c, session, files: true }), stopWhen: stepCountIs(6), prompt: "x" });
      const seen = sent.slice(1).map((options) => textOf(lastToolOutput(options)));
      assert.equal(seen[0], "wrote 12 bytes to notes/plan.txt");
      assert.equal(seen[1], "data.csv (8 bytes)\nnotes/plan.txt (12 bytes)");
      assert.equal(seen[2], "step one ✓");
      assert.match(seen[3] ?? "", /missing\.txt|not found|no file/i);
      assert.equal(await session.files.downloadText("notes/plan.txt"), "step one ✓");
    } finally {
      await session.close();
    }
  });

  test("a session that is gone is thrown to the caller, not shown to the model", async () => {
    const c = client();
    const session = await c.createSession();
    await session.close();
    const tools = sandlotTools({ client: c, session, tools: ["run_in_session"] });
    const { model } = scripted(toolCall("c1", "run_in_session", { code: "1" }), answer("?"));
    const result = await generateText({ model, tools, stopWhen: stepCountIs(3), prompt: "x" });
    // The AI SDK reports a tool that threw as a tool-error part of the step.
    const failed = result.steps[0]?.content.find((part) => part.type === "tool-error");
    assert.ok(failed && failed.type === "tool-error");
    assert.match(String(failed.error), /no longer exists/);
  });

  test("options are checked", () => {
    const c = new Client({ baseUrl: URL });
    assert.throws(() => sandlotTools({ client: c, tools: ["run_in_session"] }), TypeError);
    assert.throws(() => sandlotTools({ client: c, files: true }), TypeError);
    assert.throws(() => sandlotTools({ client: c, maxChars: 10 }), RangeError);
    assert.deepEqual(Object.keys(sandlotTools({ client: c })), ["run_python"]);
  });
});
