/**
 * sandlot's TypeScript client: run Python in kernel-isolated sandboxes on a
 * sandlot server, one-shot or in stateful sessions, whole or streamed.
 *
 *     import { Client } from "sandlot";
 *
 *     const client = new Client({ baseUrl: "http://127.0.0.1:8765" });
 *     const result = await client.execute("print(6 * 7)");
 *     console.log(result.stdout);                      // "42\n"
 *
 * Failures of sandlot itself throw the `SandlotError` tree (see `errors.ts`);
 * an exception in the user's code is data (`result.status === "error"`).
 * Tools for the Vercel AI SDK are in `sandlot/ai`. See docs/typescript.md.
 */

export {
  type AgentChunk, type AgentCompletion, type AgentExtra, agentExtra, type AgentOptions, type AgentStep, agentStep,
  type AgentStepEvent, type ChatCompletionRequest, type ChatMessage, type ChatToolCall, type ChatUsage, type ModelInfo,
  type StopReason,
} from "./agent.js";
export { Client } from "./client.js";
export {
  AuthenticationError, CapacityError, ClosedError, InvalidRequestError, NotFoundError, ProtocolError,
  RequestTimeoutError, SandboxError, SandlotError, type SandlotErrorOptions, SetupError, SpawnError, TooLargeError,
  UnavailableError, UpstreamError, UpstreamTimeoutError,
} from "./errors.js";
export { SessionFiles } from "./files.js";
export { type ClientOptions, DEFAULT_BASE_URL, DEFAULT_TIMEOUT } from "./http.js";
export { Session } from "./session.js";
export { EventStream, ServerStream } from "./stream.js";
export type {
  BatchItem, BatchStreamItem, DisplayData, ErrorOutput, ExecuteOptions, ExecuteResult, ExecutionError, ExecutionResult, FileData,
  FileInfo, Health, LimitsOverride, Network, NetworkConnection, Output, RequestOptions, SessionExecuteOptions,
  SessionInfo, SessionNetwork, SessionOptions,
  SessionStreamOptions, Status, StreamCallbacks, StreamEvent, StreamOptions, StreamOutput, ToolCallRecord, Usage,
} from "./types.js";
export { VERSION } from "./version.js";
