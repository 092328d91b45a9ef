// The layout of lib/ is the architecture (docs/architecture.md): each folder is a layer
// and imports only the layers below it, no file imports another in a circle (type
// imports included), and no file outgrows one responsibility. Held here so that a
// shortcut across layers fails a test instead of waiting for a reviewer.
import { test } from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const LIB = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'lib')

/** Each folder's rank: a file may import files of its own folder or of a lower rank. */
const RANK: Record<string, number> = {
  protocol: 0, // wire constants, close codes, the error catalogue, contracts, diagnostics channels
  wire: 1, // envelope, frames, WebSocket framing, schema compiling
  broker: 1, // the broker contract and its memory and Redis implementations
  client: 1, // the typed client: protocol/ only, it runs in browsers
  config: 2, // options and users
  react: 2, // React bindings over the client
  connection: 3, // one connection, its subscriptions, limits, answers, registry, heartbeat
  asyncapi: 3, // the AsyncAPI document and CLI, from contracts and options
  pubsub: 4, // topics, the publish path, the hub, the delivery rule
  messages: 5, // routes, route runner, hooks, idempotency
  inbound: 6, // lifecycle, dispatch, auth, topic commands
  plugin: 7, // the facade (app.realtime) and metrics
  dashboard: 8, // the fastify-realtime/dashboard entry
  '.': 9 // entries: index.ts, redis.ts and postgres.ts only compose
}
const MAX_LINES = 420

function sources (dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f))
}

function folderOf (file: string): string {
  const rel = relative(LIB, file).split('\\').join('/')
  return rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : '.'
}

/** Code without comments and string contents, so that a number in prose is not a literal. */
function code (text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:])\/\/.*$/gm, '$1')
    .replace(/'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g, "''")
}

const files = sources(LIB)
const imports = new Map<string, string[]>()
for (const file of files) {
  const text = readFileSync(file, 'utf8')
  const targets: string[] = []
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    targets.push(resolve(dirname(file), m[1]).replace(/\.js$/, '.ts'))
  }
  imports.set(file, targets)
}

test('every folder of lib/ has a rank', async (t) => {
  t.same(files.filter((f) => !(folderOf(f) in RANK)).map((f) => relative(LIB, f)), [], 'every file is in a ranked folder')
  t.same(files.filter((f) => folderOf(f) === '.').map((f) => relative(LIB, f)).sort(), ['index.ts', 'postgres.ts', 'redis.ts'], 'the root holds the entries only')
})

test('each folder imports only its own and lower layers', async (t) => {
  const upward: string[] = []
  for (const [file, targets] of imports) {
    for (const target of targets) {
      const from = folderOf(file)
      const to = folderOf(target)
      if (from !== to && RANK[to] >= RANK[from]) upward.push(`${relative(LIB, file)} -> ${relative(LIB, target)}`)
    }
  }
  t.same(upward, [], 'no import runs up or sideways')
})

test('no import circle in lib/', async (t) => {
  const state = new Map<string, 'open' | 'done'>()
  const circles: string[] = []
  const stack: string[] = []
  const visit = (file: string): void => {
    state.set(file, 'open')
    stack.push(file)
    for (const target of imports.get(file) ?? []) {
      if (state.get(target) === 'open') circles.push(stack.slice(stack.indexOf(target)).concat(target).map((f) => relative(LIB, f)).join(' -> '))
      else if (!state.has(target)) visit(target)
    }
    stack.pop()
    state.set(file, 'done')
  }
  for (const file of files) if (!state.has(file)) visit(file)
  t.same(circles, [], 'no circle')
})

test(`no file in lib/ over ${MAX_LINES} lines`, async (t) => {
  const long = files.map((f) => `${relative(LIB, f)}: ${readFileSync(f, 'utf8').split('\n').length} lines`)
    .filter((line) => Number(line.slice(line.lastIndexOf(' ', line.length - 7) + 1, -6)) > MAX_LINES)
  t.same(long, [], 'no long file')
})

test('close codes and ready states are spelled once, in protocol/constants.ts', async (t) => {
  const found: string[] = []
  for (const file of files) {
    if (relative(LIB, file) === join('protocol', 'constants.ts')) continue
    const text = code(readFileSync(file, 'utf8'))
    for (const m of text.matchAll(/\b(10(?:0[1-9]|1[0-5])|250[01]|4\d{3})\b/g)) found.push(`${relative(LIB, file)}: ${m[0]}`)
    for (const m of text.matchAll(/readyState\s*[!=]==?\s*\d/g)) found.push(`${relative(LIB, file)}: ${m[0]}`)
  }
  t.same(found, [], 'no numeric close code or ready state outside the table')
})

/** Suites that test the whole rather than one layer's modules. */
const WHOLE = new Set(['model', 'integration', 'browser', 'examples', 'package'])

test('tests mirror the layout: a module\'s tests are in the folder of its layer', async (t) => {
  const TEST = resolve(LIB, '..', 'test')
  const misplaced = readdirSync(TEST, { recursive: true }).map(String)
    .filter((f) => f.endsWith('.test.ts') && !f.startsWith('fixtures'))
    .map((f) => f.split('\\').join('/'))
    .filter((f) => {
      const folder = f.includes('/') ? f.slice(0, f.indexOf('/')) : '.'
      return folder === '.' ? f !== 'layout.test.ts' : !(folder in RANK) && !WHOLE.has(folder)
    })
  t.same(misplaced, [], 'every suite is in a layer\'s folder or a folder of whole-system suites')
})
