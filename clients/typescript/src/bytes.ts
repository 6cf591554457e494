/**
 * Bytes, text and base64 with only what every runtime has (`TextEncoder`,
 * `btoa`, `atob`): no `Buffer`, so the package runs on Deno and edge
 * runtimes as it does on Node.
 */

import type { FileData } from "./types.js";

const encoder = new TextEncoder();
// Large enough to be quick, small enough for String.fromCharCode's argument limit.
const CHUNK = 0x8000;

/** `data` as bytes: text is encoded as UTF-8. */
export function toBytes(data: FileData): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

/** Standard base64 (with padding) of `data`. */
export function toBase64(data: FileData): string {
  const bytes = toBytes(data);
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** The bytes of standard base64 text; throws on text that is not base64. */
export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
