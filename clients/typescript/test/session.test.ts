// Sessions against the real server: lifecycle, state, interrupt, notebook.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { NotFoundError, Session } from "sandlot";

import { client, signal } from "./helpers.js";

describe("sessions", () => {
  test("a session keeps its state, and is gone once closed", async () => {
    const c = client();
    const session = await c.createSession({ timeout: 20, idleTimeout: 120, env: { WHO: "me" } });
    assert.ok(session instanceof Session);
    assert.match(session.id, /^ses_/);
    const info = await session.info();
    assert.equal(info.id, session.id);
    assert.equal(info.execution_count, 0);
    assert.ok(Date.parse(info.expires_at) > Date.parse(info.created_at));

    await session.execute("import os\ncounter = 1");
    await session.execute("counter += 1");
    const result = await session.execute("print(counter, os.environ['WHO'])");
    assert.equal(result.stdout, "2 me\n");
    assert.equal(result.execution_count, 3);

    assert.ok((await c.listSessions()).some((s) => s.id === session.id));
    const same = await c.getSession(session.id);
    const counter = await same.execute("counter");
    assert.deepEqual(counter.outputs[0]?.output_type === "execute_result" && counter.outputs[0].data, { "text/plain": "2" });

    const notebook = await session.notebook();
    assert.equal(notebook["nbformat"], 4);
    const cells = notebook["cells"] as Array<{ source: string }>;
    assert.deepEqual(cells.slice(0, 2).map((cell) => cell.source), ["import os\ncounter = 1", "counter += 1"]);

    await session.close();
    await assert.rejects(session.execute("counter"), NotFoundError);
    await assert.rejects(c.getSession(session.id), NotFoundError);
    assert.ok(!(await c.listSessions()).some((s) => s.id === session.id));
    await session.close(); // closing again is fine
  });

  test("pause, resume, fork, archive and import keep the state", async () => {
    const c = client();
    const session = await c.createSession();
    const made: Session[] = [session];
    try {
      await session.execute("kept = [1, 2]\nopen('f.txt', 'w').write('file')");
      const paused = await session.pause();
      assert.equal(paused.state, "paused");
      assert.ok((await c.listSessions()).some((s) => s.id === session.id && s.state === "paused"));
      assert.equal((await session.resume()).state, "running");
      const back = await session.execute("print(kept, open('f.txt').read())");
      assert.equal(back.stdout, "[1, 2] file\n");
      assert.ok(back.resumed?.restored.includes("kept"));
      const fork = await session.fork();
      made.push(fork);
      await fork.execute("kept.append(3)");
      assert.equal((await fork.execute("print(kept)")).stdout, "[1, 2, 3]\n");
      assert.equal((await session.execute("print(kept)")).stdout, "[1, 2]\n");
      const copy = await c.importSession(await session.archive());
      made.push(copy);
      assert.equal((await copy.execute("print(kept)")).stdout, "[1, 2]\n");
    } finally {
      for (const s of made) await s.close();
    }
  });

  test("interrupt stops a running cell and keeps the state", async () => {
    const session = await client().createSession();
    try {
      await session.execute("kept = 'state'");
      const started = signal();
      const running = session.execute("import time\nprint('started', flush=True)\ntime.sleep(30)",
                                      { onStdout: () => started.resolve() });
      await started.promise;
      await session.interrupt();
      const result = await running;
      assert.equal(result.status, "error");
      assert.equal(result.error?.ename, "KeyboardInterrupt");
      const kept = await session.execute("kept");
      assert.deepEqual(kept.outputs[0]?.output_type === "execute_result" && kept.outputs[0].data, { "text/plain": "'state'" });
    } finally {
      await session.close();
    }
  });
});
