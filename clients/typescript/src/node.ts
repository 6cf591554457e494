/**
 * The package as Node loads it (the `node` condition of package.json's
 * exports): everything `index.ts` has, with a `Client` whose default
 * transport is `node:http` instead of Node's slower `fetch` (see
 * `node/fetch.ts`). Deno, Bun, edge runtimes and bundlers for them get
 * `index.ts` itself. Pass `fetch` to use another transport anyway.
 */

import { Client as FetchClient } from "./client.js";
import type { ClientOptions } from "./http.js";
import { nodeFetch } from "./node/fetch.js";

export * from "./index.js";

export class Client extends FetchClient {
  constructor(options: ClientOptions = {}) {
    super({ fetch: nodeFetch, ...options });
  }
}

export { nodeFetch };
