// What starting an app on the plugin costs, beside its peers: each case runs in N fresh
// processes (the cases taking turns, so that a busy moment of the machine does not fall
// on one case only) and the medians are printed. It measures the BUILT package (dist/,
// reached by its own name as an app reaches it), so `npm run build` first.
//
//   node --import tsx bench/startup.ts [--runs 10] [--cpu-prof] [--json]
//
// - import: ms around `await import(...)` of the case's specifiers (Node's own start-up
//   is not counted);
// - listen: ms from before those imports to `await app.listen()` resolved: the imports,
//   `Fastify()`, the registration and `ready`;
// - modules: the files loaded by the time listen() resolved (ES modules through a loader
//   hook, CommonJS ones from require.cache), counted in a separate run so that the hook
//   costs the timed runs nothing.
//
// --cpu-prof writes one V8 CPU profile per case to bench/results/profiles/startup/
// (summarise one with bench/profile-top.ts).
import { execFile } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = fileURLToPath(new URL('..', import.meta.url))

interface Case {
  /** Specifiers imported, one after the other. */
  imports: string[]
  /** Code run after the imports (with `m` the imported namespaces, in order) that ends with an app listening as `app`, or nothing for an import-only case. */
  listen?: string
}

const cases: Record<string, Case> = {
  'fastify-realtime': { imports: ['fastify-realtime'] },
  '@fastify/websocket': { imports: ['@fastify/websocket'] },
  'socket.io': { imports: ['socket.io'] },
  fastify: { imports: ['fastify'], listen: 'const app = m[0].default()' },
  'fastify + @fastify/websocket': {
    imports: ['fastify', '@fastify/websocket'],
    listen: `const app = m[0].default()
      await app.register(m[1].default)
      app.get('/ws', { websocket: true }, (socket) => socket.on('message', (data) => socket.send(data)))`
  },
  'fastify + fastify-realtime': {
    imports: ['fastify', 'fastify-realtime'],
    listen: `const app = m[0].default()
      await app.register(m[1].default)`
  }
}

/** The script a fresh process runs for a case: prints `{ import, listen?, modules? }` as JSON. */
function script (c: Case, count: boolean): string {
  const counting = count
    ? `const { register } = await import('node:module')
       const { MessageChannel } = await import('node:worker_threads')
       const loaded = new Set()
       const { port1, port2 } = new MessageChannel()
       port1.on('message', (url) => loaded.add(url)); port1.unref()
       const hook = 'data:text/javascript,' + encodeURIComponent('let port; export function initialize (data) { port = data.port } export async function load (url, context, next) { port.postMessage(url); return next(url, context) }')
       register(hook, { data: { port: port2 }, transferList: [port2] })`
    : ''
  const report = count
    ? `await new Promise((resolve) => setTimeout(resolve, 100))
       const { createRequire } = await import('node:module')
       const { pathToFileURL } = await import('node:url')
       for (const file of Object.keys(createRequire(import.meta.url).cache)) loaded.add(pathToFileURL(file).href)
       result.modules = [...loaded].filter((url) => url.startsWith('file:')).length`
    : ''
  return `${counting}
    const started = performance.now()
    const m = []
    for (const specifier of ${JSON.stringify(c.imports)}) m.push(await import(specifier))
    const result = { import: performance.now() - started }
    ${c.listen === undefined
      ? ''
      : `${c.listen}
    await app.listen({ port: 0, host: '127.0.0.1' })
    result.listen = performance.now() - started`}
    ${report}
    console.log(JSON.stringify(result))
    ${c.listen === undefined ? '' : 'await app.close()'}
    process.exit(0)`
}

function run (args: string[]): Promise<string> {
  // tap or tsx in NODE_OPTIONS would load (and time) their own hooks in every child.
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: root, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`node ${args.join(' ')} failed:\n${stdout}\n${stderr}`, { cause: err }))
      else resolve(stdout)
    })
  })
}

interface Sample { import: number, listen?: number, modules?: number }

async function once (c: Case, extra: string[] = [], count = false): Promise<Sample> {
  const out = await run([...extra, '--input-type=module', '-e', script(c, count)])
  return JSON.parse(out.trim().split('\n').pop() as string) as Sample
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '10' }, 'cpu-prof': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } })
const runs = Number(flags.runs)

const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(cases).map((name) => [name, []]))
await once(cases['fastify + fastify-realtime']) // warms the file cache
for (let i = 0; i < runs; i++) {
  for (const [name, c] of Object.entries(cases)) samples[name].push(await once(c))
}
const modules: Record<string, number> = {}
for (const [name, c] of Object.entries(cases)) modules[name] = (await once(c, [], true)).modules as number
if (flags['cpu-prof']) {
  const dir = fileURLToPath(new URL('results/profiles/startup/', import.meta.url))
  for (const [name, c] of Object.entries(cases)) {
    const caseDir = `${dir}${name.replace(/[^a-z0-9]+/gi, '-')}`
    mkdirSync(caseDir, { recursive: true })
    await once(c, ['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', caseDir])
  }
  console.log(`CPU profiles in ${dir}`)
}

const rows = Object.entries(samples).map(([name, list]) => {
  const listen = list.map((s) => s.listen).filter((v): v is number => v !== undefined)
  return { case: name, import: Math.round(median(list.map((s) => s.import))), listen: listen.length === 0 ? undefined : Math.round(median(listen)), modules: modules[name] }
})
const byName = Object.fromEntries(rows.map((row) => [row.case, row]))
const ratios = {
  import: byName['fastify-realtime'].import / byName['@fastify/websocket'].import,
  listen: (byName['fastify + fastify-realtime'].listen as number) / (byName['fastify + @fastify/websocket'].listen as number)
}
if (flags.json) {
  console.log(JSON.stringify({ runs, rows, ratios }, null, 2))
} else {
  console.log(`Startup, medians of ${runs} fresh processes (Node ${process.version})`)
  console.log('| case | import ms | to listen() ms | modules loaded |')
  console.log('| --- | ---: | ---: | ---: |')
  for (const row of rows) console.log(`| ${row.case} | ${row.import} | ${row.listen ?? ''} | ${row.modules} |`)
  console.log(`import: fastify-realtime / @fastify/websocket = ${ratios.import.toFixed(2)}× (target ≤ 1.5×)`)
  console.log(`listen: fastify + fastify-realtime / fastify + @fastify/websocket = ${ratios.listen.toFixed(2)}× (target ≤ 1.3×)`)
}
