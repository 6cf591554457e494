/**
 * A session's workspace files (`session.files`): upload, download, list,
 * delete. Paths are relative to the workspace; the server refuses absolute
 * paths and paths that leave it (`InvalidRequestError`), and this client
 * refuses `.` and `..` segments before sending (see `quotePath`).
 */

import * as calls from "./calls.js";
import type { Transport } from "./http.js";
import type { FileData, FileInfo, RequestOptions } from "./types.js";

const decoder = new TextDecoder("utf-8");

export class SessionFiles {
  /** @internal Made by `Session`. */
  constructor(private readonly transport: Transport, private readonly sessionId: string) {}

  /** Write `data` to `path` (parent directories are created; an existing file is replaced). Text is stored as UTF-8. */
  async upload(path: string, data: FileData, options: RequestOptions = {}): Promise<void> {
    await this.transport.send(calls.uploadCall(this.sessionId, path, data), options.signal);
  }

  /** The bytes of `path` (`NotFoundError` if there is no such file). */
  async download(path: string, options: RequestOptions = {}): Promise<Uint8Array> {
    return await this.transport.send(calls.downloadCall(this.sessionId, path), options.signal);
  }

  /** The contents of `path`, decoded as UTF-8. */
  async downloadText(path: string, options: RequestOptions = {}): Promise<string> {
    return decoder.decode(await this.download(path, options));
  }

  /** Every file in the workspace, with its size and modification time. */
  async list(options: RequestOptions = {}): Promise<FileInfo[]> {
    return await this.transport.send(calls.filesCall(this.sessionId), options.signal);
  }

  /** Delete `path` (`NotFoundError` if there is no such file). */
  async delete(path: string, options: RequestOptions = {}): Promise<void> {
    await this.transport.send(calls.deleteFileCall(this.sessionId, path), options.signal);
  }
}
