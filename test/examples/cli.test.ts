// The command-line example (examples/cli) against its server: the scripted demo runs
// to the end, and the interactive mode answers commands read from a pipe.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { buildCliServer } from '../../examples/cli/server.js'

const cli = fileURLToPath(new URL('../../examples/cli/client.ts', import.meta.url))

async function serve (t: Test): Promise<string> {
  const app = await buildCliServer()
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`
}

function run (args: string[], input?: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => {
      child.kill()
      reject(new Error(`the CLI did not finish:\n${stdout}\n${stderr}`))
    }, 30_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    if (input !== undefined) child.stdin.end(input)
    else child.stdin.end()
  })
}

t.test('--demo runs a scripted session and exits', async (t) => {
  const url = await serve(t)
  const { code, stdout, stderr } = await run(['--url', url, '--name', 'demo', '--demo'])
  t.equal(code, 0, 'exits 0')
  t.equal(stderr, '')
  const lines = stdout.trim().split('\n')
  t.same(lines, [
    `demo: connecting to ${url} as demo`,
    'demo: connected (open), subscribed to broadcast',
    'demo: echo -> hello from the demo',
    '[broadcast #1] demo: hi everyone',
    'demo: broadcast #1 sent; came back as "hi everyone"',
    'demo: a blank broadcast is refused -> BLANK: nothing to broadcast',
    'demo: status -> 1 connection(s), 1 listening',
    '* closed (1000)',
    'demo: done'
  ])
})

t.test('interactive commands from a pipe', async (t) => {
  const url = await serve(t)
  const input = ['help', 'echo  hi there ', 'broadcast news', 'status', 'nonsense', 'echo', 'quit', 'echo never runs'].join('\n') + '\n'
  const { code, stdout } = await run(['--url', url, '--name', 'ann'], input)
  t.equal(code, 0)
  t.match(stdout, `connecting to ${url} as ann; type help for commands`)
  t.match(stdout, /commands:\n {2}echo <text>/)
  t.match(stdout, 'echo: hi there (you are ann)')
  t.match(stdout, '[broadcast #1] ann: news')
  t.match(stdout, 'sent as broadcast #1')
  t.match(stdout, /server: 1 connection\(s\), 1 listening, up \d+ s; you are [0-9a-f-]{36}/)
  t.match(stdout, 'client: open, last broadcast seen #1, 0 command(s) waiting')
  t.match(stdout, 'unknown command "nonsense"; type help')
  t.match(stdout, 'echo failed: VALIDATION_FAILED')
  t.notMatch(stdout, 'never runs')
  t.match(stdout, /bye\n$/)
})

t.test('--help prints the usage', async (t) => {
  const { code, stdout } = await run(['--help'])
  t.equal(code, 0)
  t.match(stdout, /^usage: client\.ts/)
})
