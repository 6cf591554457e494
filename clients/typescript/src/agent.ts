/**
 * The agent endpoint (`POST /v1/chat/completions`): OpenAI's chat-completions
 * API, where the server runs the code the model writes and feeds the results
 * back until the model answers (docs/agent.md).
 *
 * The official `openai` package works against it unchanged; this module adds
 * the types of sandlot's extra request fields (`session_id`, `keep_session`,
 * `max_steps`) and of the `sandlot` field responses carry (the executed
 * steps, the session, why the loop stopped), `agentExtra()` / `agentStep()`
 * to read that field from any response object (the `openai` package's
 * included), and a small client of its own (`client.chatCompletion()`,
 * `client.chatCompletionStream()`) for code that wants no other dependency.
 *
 * The OpenAPI description has no schema for these bodies (it says only
 * "object"), so these types follow docs/agent.md and the server's
 * `sandlot.agent.openai_format`; the steps reuse the generated result types.
 */

import { errorFromEvent, isObject, unreadable } from "./errors.js";
import type { Call } from "./http.js";
import type { Read } from "./stream.js";
import type { ServerSentEvent } from "./sse.js";
import type { ExecutionError, Output, Status, ToolCallRecord } from "./types.js";

/** Why the server's loop stopped. */
export type StopReason = "answer" | "max_steps" | "time_limit" | "repeated_failure" | "client_tool";

/** One code step the server ran for the model. */
export interface AgentStep {
  index: number;
  code: string;
  status: Status;
  stdout: string;
  stderr: string;
  outputs: Output[];
  error: ExecutionError | null;
  duration_ms: number;
  tool_calls: ToolCallRecord[];
}

/** The `sandlot` field of a completion, and of a stream's last content chunk. */
export interface AgentExtra {
  /** The session the steps ran in, when it was kept (`keep_session`, or a `session_id` you passed); else `null`. */
  session_id: string | null;
  stop_reason: StopReason;
  /** Calls to the upstream model. */
  model_calls: number;
  steps: AgentStep[];
  /** Host tool calls the steps made. */
  tool_calls: ToolCallRecord[];
}

/** The `sandlot` field of a step chunk in a stream: one executed step, as it finished. */
export interface AgentStepEvent {
  step: AgentStep;
  session_id: string;
}

/** sandlot's own request fields, beside OpenAI's. */
export interface AgentOptions {
  /** Continue in this existing session of yours. */
  session_id?: string;
  /** Keep the request's new session afterwards; its id comes back in `sandlot.session_id`. */
  keep_session?: boolean;
  /** Fewer code steps than the server's maximum. */
  max_steps?: number;
}

/** A chat message in OpenAI's shape. */
export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content?: string | unknown[] | null;
  [field: string]: unknown;
}

/** A chat-completions request: OpenAI's fields (passed through to the model) and sandlot's. */
export interface ChatCompletionRequest extends AgentOptions {
  /** One of `client.models()`; the server's default when left out. */
  model?: string;
  messages: ChatMessage[];
  [field: string]: unknown;
}

/** A tool call in an assistant message (a client tool the server hands back: `stop_reason: "client_tool"`). */
export interface ChatToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A `chat.completion`, with `usage` summed over every model call, and sandlot's `sandlot` field. */
export interface AgentCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: "assistant"; content: string | null; tool_calls?: ChatToolCall[] };
    finish_reason: string;
    logprobs: unknown;
  }>;
  usage: ChatUsage;
  sandlot: AgentExtra;
}

/** One `chat.completion.chunk` of a stream: a content delta, a step (no choices, `sandlot.step`), the finish, or usage. */
export interface AgentChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: "assistant"; content?: string; tool_calls?: Array<ChatToolCall & { index: number }> };
    finish_reason: string | null;
    logprobs?: unknown;
  }>;
  usage?: ChatUsage;
  sandlot?: AgentExtra | AgentStepEvent;
}

/** A model the agent endpoint serves (`GET /v1/models`). */
export interface ModelInfo {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

/** The `sandlot` field of a completion or of a stream's final chunk, from any client's response object. */
export function agentExtra(response: unknown): AgentExtra | undefined {
  const extra = isObject(response) ? response["sandlot"] : undefined;
  return isObject(extra) && Array.isArray(extra["steps"]) ? (extra as unknown as AgentExtra) : undefined;
}

/** The step a stream's step chunk carries, from any client's chunk object; `undefined` for other chunks. */
export function agentStep(chunk: unknown): AgentStep | undefined {
  const extra = isObject(chunk) ? chunk["sandlot"] : undefined;
  return isObject(extra) && isObject(extra["step"]) ? (extra["step"] as unknown as AgentStep) : undefined;
}

// How long the client waits for a whole agent request by default: the server's default
// `max_wall_time` (docs/agent.md), which bounds the loop, model calls included.
const AGENT_WALL_TIME = 300;

export function chatCall(request: ChatCompletionRequest, stream: boolean): Call<AgentCompletion> {
  return {
    method: "POST", path: "/v1/chat/completions", json: { ...request, stream }, stream, runTimeout: AGENT_WALL_TIME,
    parse: async (r) => {
      const body: unknown = await r.json().catch((error: unknown) => {
        throw unreadable("a chat completion", error);
      });
      if (!isObject(body) || !Array.isArray(body["choices"])) throw unreadable("a chat completion");
      return body as unknown as AgentCompletion;
    },
  };
}

export function modelsCall(): Call<ModelInfo[]> {
  return {
    method: "GET", path: "/v1/models",
    parse: async (r) => {
      const body: unknown = await r.json().catch((error: unknown) => {
        throw unreadable("a model list", error);
      });
      if (!isObject(body) || !Array.isArray(body["data"])) throw unreadable("a model list");
      return body["data"] as ModelInfo[];
    },
  };
}

/** One raw event of a chat stream: a chunk, the `[DONE]` end, or the server's failure (thrown). */
export function readChunk(raw: ServerSentEvent): Read<AgentChunk> {
  if (raw.data === "[DONE]") return { end: true };
  let payload: unknown;
  try {
    payload = JSON.parse(raw.data);
  } catch (error) {
    throw unreadable("a chat completion chunk", error);
  }
  if (isObject(payload) && "error" in payload && !("choices" in payload)) throw errorFromEvent(payload["error"]);
  if (!isObject(payload) || !Array.isArray(payload["choices"])) throw unreadable("a chat completion chunk");
  return { value: payload as unknown as AgentChunk };
}
