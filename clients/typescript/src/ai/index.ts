/**
 * `sandlot/ai`: sandlot as Vercel AI SDK tools (`ai` v6 and `zod`, peer dependencies).
 *
 *     import { sandlotTools } from "sandlot/ai";
 *     const tools = sandlotTools({ client, session });
 *
 * See `tools.ts` for the tools and what the model reads of them.
 */

export {
  DEFAULT_MAX_CHARS, describeImage, IMAGE_TYPES, type ImagePart, resultParts, type TextPart, type ToolPart,
} from "./output.js";
export {
  type CodeInput, modelContent, type SandlotToolName, type SandlotToolOutput, sandlotTools, type SandlotToolsOptions,
} from "./tools.js";
