// E2B's JavaScript SDK (@e2b/code-interpreter from npm), unmodified, against `sandlot serve --e2b`.
// tests/test_e2b.py starts the server and runs this with E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY set.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { Sandbox } from '@e2b/code-interpreter'

test('create, run code, files, commands, kill', async () => {
  const sbx = await Sandbox.create()
  try {
    const printed = []
    const execution = await sbx.runCode('greeting = "hi from js"\nprint(greeting)\n20 + 22', {
      onStdout: (m) => printed.push(m.line),
    })
    assert.equal(execution.error, undefined)
    assert.deepEqual(execution.logs.stdout, ['hi from js\n'])
    assert.deepEqual(printed, ['hi from js\n'])
    assert.equal(execution.text, '42')
    assert.equal((await sbx.runCode('greeting')).text, "'hi from js'")

    const failed = await sbx.runCode('1 / 0')
    assert.equal(failed.error.name, 'ZeroDivisionError')

    await sbx.files.write('/home/user/from-js.txt', 'written by js')
    assert.equal(await sbx.files.read('/home/user/from-js.txt'), 'written by js')
    const names = (await sbx.files.list('/home/user')).map((e) => e.name)
    assert.ok(names.includes('from-js.txt'), names.join(','))

    const result = await sbx.commands.run('echo hi && ls')
    assert.equal(result.exitCode, 0)
    assert.match(result.stdout, /^hi\n[\s\S]*from-js\.txt/)

    // The context calls carry the sandbox's traffic token (the SDK sends no access token there).
    const context = await sbx.createCodeContext()
    await sbx.runCode('only_here = 1', { context })
    assert.equal((await sbx.runCode('only_here', { context })).text, '1')
    assert.ok((await sbx.listCodeContexts()).some((c) => c.id === context.id))
    await sbx.removeCodeContext(context.id)

    assert.equal(await sbx.isRunning(), true)
  } finally {
    await sbx.kill()
  }
  assert.equal(await sbx.isRunning(), false)
})
