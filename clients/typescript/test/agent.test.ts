// The agent endpoint against the real server, whose model "echo" is test/serve.py's scripted
// upstream: "run: <code>" makes it call the python tool; after a result it answers "result: ...".
// Both this package's own calls and the official `openai` package, unchanged.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import OpenAI from "openai";
import { type AgentChunk, agentExtra, agentStep, NotFoundError, UpstreamError } from "sandlot";

import { API_KEY, client, URL } from "./helpers.js";

describe("the agent endpoint, with this package", () => {
  test("lists its models", async () => {
    const models = await client().models();
    assert.deepEqual(models.map((m) => m.id), ["echo"]);
  });

  test("one call runs the model's code and returns the steps in `sandlot`", async () => {
    const completion = await client().chatCompletion({ model: "echo", messages: [{ role: "user", content: "run: print(6 * 7)" }] });
    assert.equal(completion.object, "chat.completion");
    assert.match(completion.choices[0]?.message.content ?? "", /^result: .*42/s);
    assert.equal(completion.sandlot.stop_reason, "answer");
    assert.equal(completion.sandlot.model_calls, 2);
    assert.equal(completion.sandlot.session_id, null);
    const [step] = completion.sandlot.steps;
    assert.equal(step?.code, "print(6 * 7)");
    assert.equal(step?.status, "ok");
    assert.equal(step?.stdout, "42\n");
    assert.ok(completion.usage.total_tokens > 0);
  });

  test("keep_session keeps the session, which the client can then use", async () => {
    const c = client();
    const completion = await c.chatCompletion({ model: "echo", keep_session: true,
                                                messages: [{ role: "user", content: "run: answer = 42" }] });
    const sessionId = completion.sandlot.session_id;
    assert.ok(sessionId);
    const session = await c.getSession(sessionId);
    const value = await session.execute("answer");
    assert.deepEqual(value.outputs[0]?.output_type === "execute_result" && value.outputs[0].data, { "text/plain": "42" });
    const again = await c.chatCompletion({ model: "echo", session_id: sessionId,
                                           messages: [{ role: "user", content: "run: print(answer + 1)" }] });
    assert.equal(again.sandlot.steps[0]?.stdout, "43\n");
    await session.close();
    await assert.rejects(c.chatCompletion({ model: "echo", session_id: sessionId, messages: [{ role: "user", content: "x" }] }),
                         NotFoundError);
  });

  test("a model that fails is UpstreamError (502)", async () => {
    await assert.rejects(client().chatCompletion({ model: "echo", messages: [{ role: "user", content: "fail: no" }] }),
                         (error: unknown) => error instanceof UpstreamError && error.status === 502 &&
                           error.type === "upstream_error" && /403/.test(error.message));
  });

  test("a stream sends content deltas, a chunk per step, then the finish with the summary", async () => {
    const chunks: AgentChunk[] = [];
    const request = { model: "echo", messages: [{ role: "user" as const, content: "run: print(7)" }] };
    for await (const chunk of client().chatCompletionStream(request)) {
      chunks.push(chunk);
    }
    const steps = chunks.map(agentStep).filter((s) => s !== undefined);
    assert.deepEqual(steps.map((s) => s.stdout), ["7\n"]);
    const content = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    assert.match(content, /^result: .*7/s);
    const last = chunks.at(-1);
    assert.equal(last?.choices[0]?.finish_reason, "stop");
    assert.equal(agentExtra(last)?.stop_reason, "answer");
    assert.ok(chunks.findIndex((c) => agentStep(c)) < chunks.length - 1);
  });
});

describe("the agent endpoint, with the official openai package unchanged", () => {
  const openai = new OpenAI({ baseURL: `${URL}/v1`, apiKey: API_KEY, maxRetries: 0 });

  test("chat.completions.create", async () => {
    const completion = await openai.chat.completions.create({
      model: "echo", messages: [{ role: "user", content: "run: print(sum(i * i for i in range(1, 101)))" }],
    });
    assert.match(completion.choices[0]?.message.content ?? "", /338350/);
    const extra = agentExtra(completion);
    assert.equal(extra?.steps[0]?.stdout, "338350\n");
    assert.equal(extra?.stop_reason, "answer");
  });

  test("streaming, with the steps as chunks it parses like any other", async () => {
    const stream = await openai.chat.completions.create({
      model: "echo", stream: true, stream_options: { include_usage: true },
      messages: [{ role: "user", content: "run: print('hi')" }],
    });
    let content = "";
    const steps = [];
    let usage;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? "";
      const step = agentStep(chunk);
      if (step) steps.push(step);
      usage = chunk.usage ?? usage;
    }
    assert.match(content, /hi/);
    assert.deepEqual(steps.map((s) => s.stdout), ["hi\n"]);
    assert.ok(usage && usage.total_tokens > 0);
  });

  test("sandlot's request fields go in the body beside OpenAI's", async () => {
    const params = { model: "echo", messages: [{ role: "user" as const, content: "run: kept = 'yes'" }], keep_session: true };
    const completion = await openai.chat.completions.create(params);
    const sessionId = agentExtra(completion)?.session_id;
    assert.ok(sessionId, "the session was kept");
    const session = await client().getSession(sessionId);
    const kept = await session.execute("print(kept)");
    assert.equal(kept.stdout, "yes\n");
    await session.close();
  });

  test("models.list", async () => {
    const models = await openai.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ["echo"]);
  });

  test("a wrong key is the openai package's own 401", async () => {
    const wrong = new OpenAI({ baseURL: `${URL}/v1`, apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(wrong.chat.completions.create({ model: "echo", messages: [{ role: "user", content: "x" }] }),
                         (error: unknown) => error instanceof OpenAI.AuthenticationError);
  });
});
