// `fastify-realtime asyncapi <module>`: spawned as a client team would run it (the
// CLI example's contract in, a valid AsyncAPI document out; a failure, a message and
// a non-zero exit), and its options and bad input through runCommand, in process.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import type { AsyncApiDocument } from '../../lib/index.js'
import { runCommand } from '../../lib/asyncapi/command.js'
import { problems } from '../fixtures/asyncapi.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const bin = join(root, 'lib/asyncapi/cli.ts')
const contract = join(root, 'examples/cli/contract.ts')

/** The command in this process, with its output captured. */
async function command (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runCommand(args, { stdout: { write: (text: string) => { stdout += text } }, stderr: { write: (text: string) => { stderr += text } } })
  return { code, stdout, stderr }
}

/** The bin, spawned. */
function run (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
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
  })
}

t.test('package.json names the CLI', async (t) => {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))
  t.same(pkg.bin, { 'fastify-realtime': './dist/asyncapi/cli.js' }, 'built from lib/asyncapi/cli.ts')
  t.match(await readFile(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/, 'runnable as a bin')
})

t.test('asyncapi <module> prints the contract\'s document as YAML', async (t) => {
  const { code, stdout, stderr } = await run(['asyncapi', 'examples/cli/contract.ts', '--title', 'CLI demo', '--version', '0.3.0', '--server', 'ws://127.0.0.1:3000'])
  t.equal(code, 0, stderr)
  const doc = parse(stdout) as AsyncApiDocument
  t.same(await problems(doc), [], 'a valid document: no error, no warning')
  t.match(doc.info, { title: 'CLI demo', version: '0.3.0' })
  t.match(doc.servers.realtime, { host: '127.0.0.1:3000', protocol: 'ws', pathname: '/ws' })
  t.same(Object.keys(doc.channels), ['connection', 'broadcast'])
  t.ok(doc.operations.echo, 'the contract\'s routes')
})

t.test('--format json --output, --auth and --path; a default export works too', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'realtime-asyncapi-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const module = join(dir, 'contract.mjs')
  await writeFile(module, 'export default { routes: { \'x.ping\': { data: { type: \'object\' } } } }\n')
  const out = join(dir, 'doc.json')
  const { code, stdout, stderr } = await command(['asyncapi', module, '--format', 'json', '--output', out, '--auth', '--path', '/rt'])
  t.equal(code, 0, stderr)
  t.equal(stdout, '', 'nothing on standard output')
  const doc = JSON.parse(await readFile(out, 'utf8')) as AsyncApiDocument
  t.same(await problems(doc), [])
  t.ok(doc.operations['x.ping'])
  t.ok(doc.operations.auth, '--auth: the auth frame and its security scheme')
  t.equal(doc.servers.realtime.pathname, '/rt')

  const help = await command(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: fastify-realtime asyncapi <module>/)
})

t.test('topics under $realtime/ (the plugin\'s own) stay out of the CLI\'s document', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'realtime-asyncapi-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const module = join(dir, 'contract.mjs')
  await writeFile(module, 'export default { topics: { \'room/:name\': { message: { type: \'object\' } }, \'$realtime/dashboard\': { message: {} } } }\n')
  const { code, stdout, stderr } = await command(['asyncapi', module, '--format', 'json'])
  t.equal(code, 0, stderr)
  const doc = JSON.parse(stdout) as AsyncApiDocument
  t.same(Object.keys(doc.channels).sort(), ['connection', 'room.name'])
  t.notMatch(stdout, /\$realtime/)
})

t.test('the bin fails with a message and a non-zero exit', async (t) => {
  const { code, stdout, stderr } = await run(['asyncapi', 'no/such/contract.js'])
  t.equal(code, 1)
  t.match(stderr, /^fastify-realtime: .*no\/such\/contract\.js/)
  t.equal(stdout, '')
  const usage = await run(['asyncapi'])
  t.equal(usage.code, 2, 'bad usage: 2')
  t.match(usage.stderr, /Usage: fastify-realtime asyncapi <module>/)
})

t.test('bad input: a clear message and a non-zero exit code', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'realtime-asyncapi-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const empty = join(dir, 'empty.mjs')
  await writeFile(empty, 'export const other = 1\n')
  const cases: Array<[string[], number, RegExp]> = [
    [[], 2, /expected: asyncapi <module>/],
    [['generate', contract], 2, /expected: asyncapi <module>/],
    [['asyncapi', contract, '--format', 'xml'], 2, /--format must be json or yaml/],
    [['asyncapi', contract, '--server', 'http://x'], 2, /--server must look like/],
    [['asyncapi', contract, '--path', 'ws'], 2, /--path must start with \//],
    [['asyncapi', contract, '--bogus'], 2, /Unknown option '--bogus'/],
    [['asyncapi', empty], 2, /exports no contract/],
    [['asyncapi', join(dir, 'missing.mjs')], 1, /Cannot find module|ERR_MODULE_NOT_FOUND|missing\.mjs/]
  ]
  for (const [args, exit, message] of cases) {
    const { code, stdout, stderr } = await command(args)
    t.equal(code, exit, `${args.join(' ')}: exit ${exit}`)
    t.match(stderr, message)
    t.match(stderr, /^fastify-realtime: /, 'says who speaks')
    t.equal(stdout, '')
  }
})
