/**
 * sandlot as Vercel AI SDK tools: `sandlotTools({ client, session? })`.
 *
 *     import { generateText, stepCountIs } from "ai";
 *     import { sandlotTools } from "sandlot/ai";
 *
 *     const session = await client.createSession();
 *     const { text } = await generateText({
 *       model, tools: sandlotTools({ client, session }), stopWhen: stepCountIs(5),
 *       prompt: "What is the 20th Fibonacci number?",
 *     });
 *     await session.close();
 *
 * The tools and what the model reads of them follow the Python integrations
 * (`sandlot.integrations`): `run_python` runs code once in a fresh sandbox,
 * `run_in_session` in your session (state carries over), and with
 * `files: true` the model can also list, read and write the session's files.
 * A result reaches the model as AI SDK content: text, and each image the run
 * made as an `image-data` part (for vision models; `images: false` puts a
 * one-line description in its place).
 *
 * What can go wrong, and who hears of it:
 * - the model's code failed or hit a limit: a normal result whose text holds
 *   the traceback or names the limit (`isError` is set);
 * - the call was wrong in a way the model can fix (a timeout the server
 *   refuses, code too large, no capacity right now, a bad or missing file):
 *   a result with `isError` and a message saying what to do;
 * - anything else (the server unreachable, a wrong API key, a session that is
 *   gone): the `SandlotError` is thrown, and the AI SDK reports the call as
 *   failed.
 */

import { tool, type ToolSet } from "ai";
import { z } from "zod";

import { toBase64 } from "../bytes.js";
import type { Client } from "../client.js";
import { CapacityError, InvalidRequestError, NotFoundError, TooLargeError } from "../errors.js";
import type { Session } from "../session.js";
import type { ExecutionResult } from "../types.js";
import { DEFAULT_MAX_CHARS, describeImage, type ImagePart, resultParts, type ToolPart } from "./output.js";

export type SandlotToolName = "run_python" | "run_in_session";

export interface SandlotToolsOptions {
  /** The client `run_python` runs with. */
  client: Client;
  /** Your session, for `run_in_session` and the file tools; you create it and you close it. */
  session?: Session;
  /** Which run tools to offer. Default: `run_python`, and `run_in_session` when there is a session. */
  tools?: SandlotToolName[];
  /** Also offer `list_files`, `read_file` and `write_file` on the session's workspace (needs `session`). */
  files?: boolean;
  /** The run timeout (seconds) when the model names none; default the server's. */
  timeout?: number;
  /** The longest run timeout the model may ask for. */
  maxTimeout?: number;
  /** The most text one result may hold; long output keeps its head and tail. Default 20,000 (at least 500). */
  maxChars?: number;
  /** Added to every run tool's description: what data is there, which packages to use, and the like. */
  notes?: string;
  /** Send images to the model as image parts (default); `false` for models without vision. */
  images?: boolean;
}

/** What a sandlot tool call returns (the tool result in the AI SDK's steps); the model reads `parts`. */
export interface SandlotToolOutput {
  tool: string;
  /** The code failed or hit a limit, or the call itself was wrong. */
  isError: boolean;
  /** What the model reads, in order: text and images. */
  parts: ToolPart[];
  /** The full execution result, when code ran. */
  result?: ExecutionResult;
}

export interface CodeInput {
  code: string;
  timeout?: number | undefined;
}

const CODE = "Python 3 source, as you would type it into a notebook cell. print() what you want to see, or end with " +
  "an expression to get its value.";
const TIMEOUT = "Seconds before the run is stopped; omit it for the default, and raise it only for long computations.";
const COMMON = " To see a value, print() it or end the code with an expression: its value is shown like a notebook's " +
  "Out[n]. Matplotlib figures are captured by themselves (no plt.show() or savefig needed). An exception comes back " +
  "as its traceback; so does a run stopped by a limit. The sandbox has no network access, so nothing can be " +
  "downloaded or pip-installed: use the standard library and the packages already installed. Each run has a time " +
  "limit (pass timeout for a longer one) and a memory limit.";
const SESSION_GONE = "the session given to sandlotTools no longer exists on the server";

/** AI SDK tools that run Python on a sandlot server; pass them as `tools` to `generateText` or `streamText`. */
export function sandlotTools(options: SandlotToolsOptions): ToolSet {
  const { client, session } = options;
  const names = [...new Set(options.tools ?? (session ? ["run_python", "run_in_session"] : ["run_python"]))];
  if (!names.length || names.some((n) => n !== "run_python" && n !== "run_in_session")) {
    throw new TypeError(`unknown tools ${JSON.stringify(names)}; choose from run_python, run_in_session`);
  }
  if ((names.includes("run_in_session") || options.files) && !session) {
    throw new TypeError("run_in_session and the file tools need a session: sandlotTools({ client, session })");
  }
  const maxChars = options.maxChars ?? DEFAULT_MAX_CHARS;
  if (maxChars < 500) throw new RangeError("maxChars must be at least 500");
  const images = options.images ?? true;
  const both = names.includes("run_python") && names.includes("run_in_session");
  const notes = options.notes?.trim() ? `\n\n${options.notes.trim()}` : "";

  let timeout = z.number().positive();
  let timeoutText = TIMEOUT + (options.timeout !== undefined ? ` Default ${options.timeout}.` : "");
  if (options.maxTimeout !== undefined) {
    timeout = timeout.max(options.maxTimeout);
    timeoutText += ` At most ${options.maxTimeout}.`;
  }
  const inputSchema = z.object({ code: z.string().describe(CODE), timeout: timeout.optional().describe(timeoutText) });
  const toModelOutput = ({ output }: { output: SandlotToolOutput }) => modelContent(output, images);
  const run = async (name: SandlotToolName, input: CodeInput, signal: AbortSignal | undefined) => {
    const runOptions = { timeout: input.timeout ?? options.timeout, signal };
    try {
      const result = name === "run_python"
        ? await client.execute(input.code, runOptions)
        : await (session as Session).execute(input.code, runOptions);
      return { tool: name, isError: result.status !== "ok", parts: resultParts(result, maxChars), result };
    } catch (error) {
      if (error instanceof NotFoundError && name === "run_in_session") throw new NotFoundError(SESSION_GONE, { cause: error });
      return modelFacing(name, error);
    }
  };

  const tools: ToolSet = {};
  if (names.includes("run_python")) {
    tools["run_python"] = tool({
      description: "Run Python 3 code once in a fresh, isolated sandbox and get back what it printed, the value of " +
        "its last expression and any figures. Nothing persists between calls: each one starts from an empty " +
        "interpreter" + (both ? " (to build on earlier work, use run_in_session)." : ".") + COMMON + notes,
      inputSchema,
      execute: (input, { abortSignal }) => run("run_python", input, abortSignal),
      toModelOutput,
    });
  }
  if (names.includes("run_in_session")) {
    tools["run_in_session"] = tool({
      description: "Run Python 3 code in your persistent Python session, like a notebook cell: variables, " +
        "functions, imports and files from earlier run_in_session calls are still there, so build on them instead " +
        "of recomputing. Code can write files to its working directory and read them in later calls. If the " +
        "session had to be restarted (it ran out of memory), the result says so and earlier variables are gone." +
        (both ? " For a one-off computation, use run_python." : "") + COMMON + notes,
      inputSchema,
      execute: (input, { abortSignal }) => run("run_in_session", input, abortSignal),
      toModelOutput,
    });
  }
  if (options.files && session) Object.assign(tools, fileTools(session, maxChars, images));
  return tools;
}

function fileTools(session: Session, maxChars: number, images: boolean): ToolSet {
  const toModelOutput = ({ output }: { output: SandlotToolOutput }) => modelContent(output, images);
  const path = z.string().min(1).describe("A path relative to the session's working directory, like data/in.csv.");
  const answer = (name: string, parts: ToolPart[]): SandlotToolOutput => ({ tool: name, isError: false, parts });
  return {
    list_files: tool({
      description: "List the files in your Python session's working directory (the one run_in_session code sees), " +
        "with their sizes in bytes.",
      inputSchema: z.object({}),
      execute: async (_input, { abortSignal }) => {
        try {
          const files = await session.files.list({ signal: abortSignal });
          const lines = files.map((f) => `${f.path} (${f.size} bytes)`).join("\n");
          return answer("list_files", [{ type: "text", text: lines || "[no files]" }]);
        } catch (error) {
          return await fileFailure(session, "list_files", error);
        }
      },
      toModelOutput,
    }),
    read_file: tool({
      description: "Read a file from your Python session's working directory: text as text, an image (.png, .jpg, " +
        ".gif, .webp) as an image. For large or binary files, read them with Python code instead.",
      inputSchema: z.object({ path }),
      execute: async ({ path: name }, { abortSignal }) => {
        try {
          const data = await session.files.download(name, { signal: abortSignal });
          return answer("read_file", [fileContent(name, data, maxChars)]);
        } catch (error) {
          return await fileFailure(session, "read_file", error);
        }
      },
      toModelOutput,
    }),
    write_file: tool({
      description: "Write a text file to your Python session's working directory (parent directories are created, " +
        "an existing file is replaced); run_in_session code can then open it.",
      inputSchema: z.object({ path, content: z.string().describe("The file's text (stored as UTF-8).") }),
      execute: async ({ path: name, content }, { abortSignal }) => {
        try {
          await session.files.upload(name, content, { signal: abortSignal });
          const size = new TextEncoder().encode(content).length;
          return answer("write_file", [{ type: "text", text: `wrote ${size} bytes to ${name}` }]);
        } catch (error) {
          return await fileFailure(session, "write_file", error);
        }
      },
      toModelOutput,
    }),
  };
}

const IMAGE_EXTENSIONS: Record<string, string> = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg",
                                                    gif: "image/gif", webp: "image/webp" };
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function fileContent(name: string, data: Uint8Array, maxChars: number): ToolPart {
  const mediaType = IMAGE_EXTENSIONS[name.split(".").pop()?.toLowerCase() ?? ""];
  if (mediaType) return { type: "image", data: toBase64(data), mediaType };
  let value: string;
  try {
    value = strictUtf8.decode(data);
  } catch {
    return { type: "text", text: `[${name} is a binary file of ${data.length} bytes; read it with Python code instead]` };
  }
  if (!value) return { type: "text", text: `[${name} is empty]` };
  if (value.length <= maxChars) return { type: "text", text: value };
  const more = `\n[... the file goes on for ${value.length - maxChars} more characters; read the rest with Python code]`;
  return { type: "text", text: value.slice(0, maxChars) + more };
}

/** A file tool's failure: a missing file is the model's to know, a missing session the caller's. */
async function fileFailure(session: Session, name: string, error: unknown): Promise<SandlotToolOutput> {
  if (error instanceof NotFoundError) {
    // The same 404 says "no such file" and "no such session": ask which.
    const gone = await session.info().then(() => undefined, (e: unknown) => e);
    if (gone instanceof NotFoundError) throw new NotFoundError(SESSION_GONE, { cause: error });
    if (gone !== undefined) throw gone;
  }
  return modelFacing(name, error);
}

/** A failure the model can act on, as a result for it; anything else is thrown to the caller. */
function modelFacing(name: string, error: unknown): SandlotToolOutput {
  let message: string;
  if (error instanceof CapacityError) message = `${error.message} (try again in about ${Math.max(1, Math.round(error.retryAfter))} s)`;
  else if (error instanceof InvalidRequestError || error instanceof TooLargeError) message = error.message;
  else if (error instanceof NotFoundError && name !== "run_python" && name !== "run_in_session") message = error.message;
  else throw error;
  return { tool: name, isError: true, parts: [{ type: "text", text: message }] };
}

/** The AI SDK's content output for a tool result: text parts, and images as `image-data` (or a line, without vision). */
export function modelContent(output: SandlotToolOutput, images: boolean) {
  let n = 0;
  return {
    type: "content" as const,
    value: output.parts.map((part) => {
      if (part.type === "text") return { type: "text" as const, text: part.text };
      n += 1;
      if (images) return { type: "image-data" as const, data: part.data, mediaType: part.mediaType };
      return { type: "text" as const, text: `[image ${n}: ${describeImage(part as ImagePart)}; it cannot be shown in this result]` };
    }),
  };
}
