// A session's files against the real server: binary content, listing, deleting, paths.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { InvalidRequestError, NotFoundError } from "sandlot";

import { binary, client } from "./helpers.js";

describe("files", () => {
  test("binary content goes up and comes down byte for byte", async () => {
    const session = await client().createSession();
    try {
      const data = binary(3 * 1024 * 1024 + 7); // every byte value, and many reads' worth
      await session.files.upload("data/in.bin", data);
      await session.files.upload("text.txt", "héllo ✓");
      await session.files.upload("buffer.bin", data.buffer.slice(0, 10));
      const sized = await session.execute("import os\nprint(os.path.getsize('data/in.bin'), open('text.txt').read())");
      assert.equal(sized.stdout, `${data.length} héllo ✓\n`);
      assert.deepEqual(await session.files.download("data/in.bin"), data);
      assert.equal(await session.files.downloadText("text.txt"), "héllo ✓");
      assert.deepEqual(await session.files.download("buffer.bin"), data.subarray(0, 10));

      await session.execute("open('made.bin', 'wb').write(bytes(range(256)) * 4)");
      assert.deepEqual(await session.files.download("made.bin"), new Uint8Array(1024).map((_, i) => i % 256));

      const files = new Map((await session.files.list()).map((f) => [f.path, f]));
      assert.deepEqual([...files.keys()].sort(), ["buffer.bin", "data/in.bin", "made.bin", "text.txt"]);
      assert.equal(files.get("made.bin")?.size, 1024);
      assert.ok(!Number.isNaN(Date.parse(files.get("made.bin")?.modified_at ?? "")));

      await session.files.delete("made.bin");
      await assert.rejects(session.files.download("made.bin"), NotFoundError);
      await assert.rejects(session.files.delete("made.bin"), NotFoundError);
    } finally {
      await session.close();
    }
  });

  test("paths are quoted, not normalized", async () => {
    const session = await client().createSession();
    try {
      const names = ["with space.txt", "hash#tag?.txt", "d i r/%41 100%.txt", "café.txt", "back\\slash.txt"];
      for (const name of names) {
        await session.files.upload(name, name);
        assert.equal(await session.files.downloadText(name), name);
      }
      const listed = new Set((await session.files.list()).map((f) => f.path));
      for (const name of names) assert.ok(listed.has(name), name);
      const read = await session.execute("print(open('hash#tag?.txt').read())");
      assert.equal(read.stdout, "hash#tag?.txt\n");
      // fetch resolves dot segments before sending, so the client refuses them itself;
      // the server refuses absolute paths.
      for (const escaping of ["../escape.txt", "a/../../escape.txt", "./here.txt", "/etc/passwd"]) {
        await assert.rejects(session.files.upload(escaping, "x"), (error: unknown) =>
          error instanceof InvalidRequestError && /\.\.|"\."|absolute/.test(error.message));
      }
      const after = await session.execute("import os\nprint(os.path.exists('../escape.txt'), os.path.exists('here.txt'))");
      assert.equal(after.stdout, "False False\n");
    } finally {
      await session.close();
    }
  });
});
