// The package as users get it: `npm pack`, the tarball installed into throwaway consumer
// projects, each type-checked with skipLibCheck false and running a smoke script
// (connect, request, publish). One install runs the newest fastify and TypeBox (the
// versions of our own dev install) and serves three ESM projects (node16, nodenext and
// bundler resolution); the other runs the oldest versions our peer ranges admit, as a
// CommonJS project, without ioredis installed at all, which proves the main entry never
// loads it. Installs prefer the local npm cache, so only a first run downloads anything.
// The newest install must hold a single fast-json-stringify (ours deduplicated with
// fastify's). Figures for the package's weight and import time are printed as comments
// (never asserted: they depend on the machine): `npm ls --omit=dev --all` lines and
// `du -sk node_modules` of a consumer of the tarball + fastify + TypeBox against one of
// fastify + TypeBox alone, the median import time of the main entry, of fastify +
// @fastify/websocket alone, of fastify + the main entry, and of fastify-realtime/redis,
// each in a fresh process, and the median time to listen() of fastify + the plugin beside
// fastify + @fastify/websocket. A fourth ESM project runs an app on
// @fastify/type-provider-typebox 6 (TypeBox 1.x) with HTTP routes beside realtime routes.
// `npm test` runs this file alone after the rest (test:package): its tsc runs would starve
// the timing-sensitive tests of CPU on a 2-core machine.
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> }
const fixtures = fileURLToPath(new URL('../fixtures/consumer/', import.meta.url))
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const attw = join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js')

// Five installs' worth of tsc on a shared 2-core machine: minutes, not the default 2.
t.setTimeout(900_000)

/** The version our dev install has: the newest end of the matrix. */
function installed (name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
}

/** The lowest version a peer range admits: the oldest end of the matrix. */
function oldest (name: string): string {
  const range = manifest.peerDependencies[name]
  const match = /^\^(\d+\.\d+\.\d+)$/.exec(range)
  if (match === null) throw new Error(`peerDependencies.${name} "${range}" is not a caret range; teach test/package/package.test.ts its lower bound`)
  return match[1]
}

/** The middle value (the mean of the middle two for an even count). */
function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** Runs a command; on failure the error carries its output, so a test failure shows what went wrong. */
function run (command: string, args: string[], cwd: string): Promise<string> {
  // Our own `npm test` exports npm_config_* settings that must not leak into the consumers'
  // installs, and c8's coverage directory would make every child write coverage it never reads.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_') && key !== 'NODE_V8_COVERAGE'))
  // tap's process-info hook wraps child_process and puts itself back into NODE_OPTIONS
  // whatever env is given; in a child it reads the source map of every module loaded
  // (ours embed their sources), which more than doubles the import times printed below.
  // `env -u` takes it out after the wrapper, so consumers run as a user's do.
  return new Promise((resolve, reject) => {
    execFile('env', ['-u', 'NODE_OPTIONS', command, ...args], { cwd, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`, { cause: err }))
      else resolve(stdout)
    })
  })
}

const tsconfigs = {
  node16: { module: 'node16', moduleResolution: 'node16' },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext' },
  bundler: { module: 'esnext', moduleResolution: 'bundler' }
}

/** A consumer project with the given scripts of test/fixtures/consumer. */
async function consumer (dir: string, type: 'module' | 'commonjs', dependencies: Record<string, string>, scripts: string[]): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type, dependencies }, null, 2))
  for (const script of scripts) await copyFile(join(fixtures, script), join(dir, script))
  const started = Date.now()
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir)
  t.comment(`${dir}: npm install ${Date.now() - started} ms`)
}

/**
 * Type-checks the scripts under one resolution mode (one tsc run), then runs what tsc
 * emitted for each and returns the last line each printed, parsed.
 */
async function check (dir: string, flavour: keyof typeof tsconfigs, scripts: string[]): Promise<Array<Record<string, unknown>>> {
  const started = Date.now()
  const outDir = `out-${flavour}`
  const tsconfig = {
    compilerOptions: { ...tsconfigs[flavour], target: 'ES2022', strict: true, skipLibCheck: false, types: ['node'], outDir },
    files: scripts
  }
  await writeFile(join(dir, `tsconfig.${flavour}.json`), JSON.stringify(tsconfig, null, 2))
  await run(process.execPath, [tsc, '-p', `tsconfig.${flavour}.json`], dir)
  const checked = Date.now()
  const results = []
  for (const script of scripts) {
    const output = await run(process.execPath, [join(outDir, script.replace(/\.ts$/, '.js'))], dir)
    results.push(JSON.parse(output.trim().split('\n').at(-1) as string))
  }
  t.comment(`${dir} ${flavour}: tsc ${checked - started} ms, run ${Date.now() - checked} ms`)
  return results
}

/** `npm ls --omit=dev --all` lines and `du -sk node_modules` of a consumer project. */
async function weight (dir: string): Promise<{ lines: number, kb: number }> {
  const tree = await run('npm', ['ls', '--omit=dev', '--all', '--loglevel=error'], dir)
  const du = await run('du', ['-sk', 'node_modules'], dir)
  return { lines: tree.trimEnd().split('\n').length, kb: Number(du.split('\t')[0]) }
}

const IMPORT_RUNS = 10

/**
 * The median time, in ms, a fresh process takes to import each case's specifiers one
 * after the other (measured inside it, around the imports: Node's own start-up is not
 * counted), over IMPORT_RUNS runs of each, the cases taking turns so that a busy moment
 * of the machine does not fall on one case only.
 */
async function importTimes (dir: string, cases: Record<string, string[]>): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((name) => [name, []]))
  for (let i = 0; i < IMPORT_RUNS; i++) {
    for (const [name, specifiers] of Object.entries(cases)) {
      const script = `const started = performance.now(); for (const specifier of ${JSON.stringify(specifiers)}) await import(specifier); console.log(performance.now() - started)`
      samples[name].push(Number((await run(process.execPath, ['--input-type=module', '-e', script], dir)).trim()))
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, Math.round(median(values))]))
}

/**
 * The median time, in ms, from the start of a fresh process's script to listen() resolving,
 * for fastify with the plugin against fastify with @fastify/websocket and an echo route:
 * imports, register, ready, listen (what a restart of an app costs before it serves).
 */
async function listenTimes (dir: string): Promise<Record<string, number>> {
  const cases: Record<string, string> = {
    'fastify + fastify-realtime': "const { default: plugin } = await import('fastify-realtime'); await app.register(plugin)",
    'fastify + @fastify/websocket': "const { default: plugin } = await import('@fastify/websocket'); await app.register(plugin); app.get('/ws', { websocket: true }, (socket) => { socket.on('message', (m) => socket.send(m)) })"
  }
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((name) => [name, []]))
  for (let i = 0; i < IMPORT_RUNS; i++) {
    for (const [name, setup] of Object.entries(cases)) {
      const script = `const started = performance.now(); const { default: Fastify } = await import('fastify'); const app = Fastify(); ${setup}; await app.listen({ port: 0, host: '127.0.0.1' }); console.log(performance.now() - started); await app.close()`
      samples[name].push(Number((await run(process.execPath, ['--input-type=module', '-e', script], dir)).trim()))
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, Math.round(median(values))]))
}

function ratio (ours: number, theirs: number): string {
  return `${(ours / theirs).toFixed(2)}×`
}

/** The distinct fast-json-stringify copies installed in a project. */
async function fastJsonStringifyCopies (dir: string): Promise<string[]> {
  const paths = await run('npm', ['ls', 'fast-json-stringify', '--all', '--parseable', '--loglevel=error'], dir)
  return [...new Set(paths.split('\n').filter((line) => line.trim() !== ''))]
}

const expected = { reply: 'HI', headline: 'extra', offset: 1, typed: [false, false], isRealtimeError: false }
const expectedRedis = { broker: 'function', publisher: 'function', schema: 'object', typed: [false, false, false] }

let tmp = ''
let tarball = ''

t.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'fastify-realtime-package-'))
  const started = Date.now()
  const packed = JSON.parse(await run('npm', ['pack', '--json', '--loglevel=error', '--pack-destination', tmp], root)) as Array<{ filename: string, files: Array<{ path: string }> }>
  tarball = join(tmp, packed[0].filename)
  t.comment(`npm pack (with the build) ${Date.now() - started} ms`)
})
t.teardown(async () => { if (tmp !== '') await rm(tmp, { recursive: true, force: true }) })

t.test('the tarball ships its build, maps to lib/ lines, public declarations only, and a LICENSE; types are right for every resolution (attw)', async (t) => {
  const list = (await run('tar', ['-tzf', tarball], tmp)).split('\n')
  for (const file of ['package/LICENSE', 'package/dist/index.js', 'package/dist/redis.js', 'package/dist/postgres.js', 'package/dist/client/index.js', 'package/dist/cjs/index.js', 'package/dist/cjs/package.json', 'package/dist/index.d.ts', 'package/dist/cjs/index.d.ts']) {
    t.ok(list.includes(file), file)
  }
  t.notOk(list.some((file) => file.startsWith('package/lib/')), 'no TypeScript sources')
  t.notOk(list.includes('package/dist/inbound/dispatch.d.ts'), 'no declarations of internals that no public type reaches')
  t.ok(list.some((file) => file.startsWith('package/dist/chunks/')), 'ES module entries share chunks')
  const map = JSON.parse(await run('tar', ['-xzOf', tarball, 'package/dist/index.js.map'], tmp)) as { sources: string[], sourcesContent?: string[] }
  t.ok(map.sources.some((source) => source.endsWith('lib/plugin/register.ts')), 'maps name lib/ files')
  t.equal(map.sourcesContent, undefined, 'sources are not embedded (half of the package weight)')
  // attw exits non-zero on any problem and prints the table of what it found.
  await t.resolves(run(process.execPath, [attw, tarball], tmp), 'attw finds no problem')
})

t.test('ESM consumers on the newest fastify and TypeBox: node16, nodenext and bundler resolution', async (t) => {
  const dir = join(tmp, 'newest')
  await consumer(dir, 'module', {
    'fastify-realtime': `file:${tarball}`,
    fastify: installed('fastify'),
    '@sinclair/typebox': installed('@sinclair/typebox'),
    ioredis: installed('ioredis'),
    pg: installed('pg'),
    '@types/pg': installed('@types/pg'),
    ws: installed('ws'),
    // What an app's own devDependencies hold: types for the ws client its script uses, and tsx.
    '@types/ws': installed('@types/ws'),
    '@types/node': installed('@types/node'),
    tsx: installed('tsx')
  }, ['smoke.ts', 'redis.ts', 'postgres.ts'])
  // node16 and nodenext read the same declarations (dist/*.d.ts by the "import" condition);
  // the Redis entry is type-checked under the stricter two, which keeps one tsc run lighter.
  const [node16] = await check(dir, 'node16', ['smoke.ts'])
  t.match(node16, { ...expected, fastify: installed('fastify') }, 'node16: connect, request, publish')
  for (const flavour of ['nodenext', 'bundler'] as const) {
    const [smoke, redis, postgres] = await check(dir, flavour, ['smoke.ts', 'redis.ts', 'postgres.ts'])
    t.match(smoke, { ...expected, fastify: installed('fastify') }, `${flavour}: connect, request, publish`)
    t.match(redis, expectedRedis, `${flavour}: fastify-realtime/redis`)
    t.match(postgres, { broker: 'function', migration: /CREATE TABLE IF NOT EXISTS "public"."realtime_topics"/, typed: [false] }, `${flavour}: fastify-realtime/postgres`)
  }
  const copies = await fastJsonStringifyCopies(dir)
  t.equal(copies.length, 1, `one fast-json-stringify, shared with fastify (${copies.map((path) => path.slice(dir.length + 1)).join(', ')})`)
  // This project has everything the three need (ioredis for the Redis entry).
  const times = await importTimes(dir, {
    'fastify-realtime': ['fastify-realtime'],
    // Installed with us (our dependency), as in an app that registers it itself.
    '@fastify/websocket': ['@fastify/websocket'],
    'fastify + @fastify/websocket': ['fastify', '@fastify/websocket'],
    // What an app on the plugin loads: the main entry does not load fastify itself.
    'fastify + fastify-realtime': ['fastify', 'fastify-realtime'],
    'fastify-realtime/redis': ['fastify-realtime/redis']
  })
  for (const [name, ms] of Object.entries(times)) t.comment(`import time, ${name}: ${ms} ms (median of ${IMPORT_RUNS} fresh processes)`)
  t.comment(`import time, fastify-realtime / @fastify/websocket: ${ratio(times['fastify-realtime'], times['@fastify/websocket'])}`)
  const listen = await listenTimes(dir)
  for (const [name, ms] of Object.entries(listen)) t.comment(`time to listen(), ${name}: ${ms} ms (median of ${IMPORT_RUNS} fresh processes)`)
  t.comment(`time to listen(), fastify + fastify-realtime / fastify + @fastify/websocket: ${ratio(listen['fastify + fastify-realtime'], listen['fastify + @fastify/websocket'])}`)

  // What a user debugging a stack trace needs: with --enable-source-maps, frames of the
  // package name the lib/ file and line they come from.
  const stack = await run(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', "import Fastify from 'fastify'; import realtime from 'fastify-realtime'; const app = Fastify(); try { await app.register(realtime, { heartbeat: { interval: 'x' } }); await app.ready() } catch (err) { console.log(err.stack) }"], dir)
  t.match(stack, /lib\/config\/[\w-]+\.ts:\d+:\d+/, 'a stack trace through the package names lib/ files and lines')

  // The AsyncAPI CLI on a TypeScript contract, as a client team runs it: through the project's tsx.
  const contract = (await readFile(join(root, 'examples', 'cli', 'contract.ts'), 'utf8')).replace("'../../lib/client/index.js'", "'fastify-realtime/client'")
  await writeFile(join(dir, 'contract.ts'), contract)
  const document = JSON.parse(await run(join(dir, 'node_modules', '.bin', 'fastify-realtime'), ['asyncapi', 'contract.ts', '--format', 'json'], dir)) as { asyncapi: string, operations: Record<string, unknown> }
  t.equal(document.asyncapi, '3.0.0', 'fastify-realtime asyncapi contract.ts: an AsyncAPI 3.0 document')
  t.ok(document.operations.echo, 'with the contract\'s routes')
})

t.test('an ESM consumer on TypeBox 1.x (`typebox`), without @sinclair/typebox', async (t) => {
  const dir = join(tmp, 'typebox1')
  await consumer(dir, 'module', {
    'fastify-realtime': `file:${tarball}`,
    fastify: installed('fastify'),
    typebox: installed('typebox'),
    ws: installed('ws'),
    '@types/ws': installed('@types/ws'),
    '@types/node': installed('@types/node')
  }, [])
  // The same smoke script as every other consumer, its schemas built by TypeBox 1.x.
  const smoke = await readFile(join(fixtures, 'smoke.ts'), 'utf8')
  const onTypebox1 = smoke.replace("from '@sinclair/typebox'", "from 'typebox'")
  t.not(onTypebox1, smoke, 'smoke.ts imports TypeBox, now from typebox')
  await writeFile(join(dir, 'smoke-typebox1.ts'), onTypebox1)
  const missing = await run(process.execPath, ['--input-type=module', '-e', "try { await import('@sinclair/typebox'); console.log('installed') } catch { console.log('absent') }"], dir)
  t.equal(missing.trim(), 'absent', '@sinclair/typebox, an optional peer, is not installed')
  const [result] = await check(dir, 'nodenext', ['smoke-typebox1.ts'])
  t.match(result, { ...expected, fastify: installed('fastify') }, 'nodenext, skipLibCheck false: connect, request, publish')
})

t.test('an ESM consumer on @fastify/type-provider-typebox 6: HTTP routes beside realtime routes, one set of schemas', async (t) => {
  const dir = join(tmp, 'type-provider')
  await consumer(dir, 'module', {
    'fastify-realtime': `file:${tarball}`,
    fastify: installed('fastify'),
    typebox: installed('typebox'),
    '@fastify/type-provider-typebox': '^6.0.0',
    ws: installed('ws'),
    '@types/ws': installed('@types/ws'),
    '@types/node': installed('@types/node')
  }, ['type-provider.ts'])
  const [result] = await check(dir, 'nodenext', ['type-provider.ts'])
  t.match(result, { created: 201, refused: 400, post: { id: 1, text: 'hello' }, count: 1 }, 'an HTTP POST validated by the type provider publishes to a WebSocket subscriber; a realtime route answers')
})

t.test('dependency weight: the tarball + fastify + TypeBox, against fastify + TypeBox alone (printed, not asserted)', async (t) => {
  const newest = { fastify: installed('fastify'), '@sinclair/typebox': installed('@sinclair/typebox') }
  const dir = join(tmp, 'weight')
  const base = join(tmp, 'weight-base')
  await consumer(dir, 'module', { 'fastify-realtime': `file:${tarball}`, ...newest }, [])
  await consumer(base, 'module', newest, [])
  const withUs = await weight(dir)
  const without = await weight(base)
  t.comment(`dependency weight, fastify-realtime + fastify + @sinclair/typebox: npm ls --omit=dev --all ${withUs.lines} lines, node_modules ${withUs.kb} KiB`)
  t.comment(`dependency weight, fastify + @sinclair/typebox alone: npm ls --omit=dev --all ${without.lines} lines, node_modules ${without.kb} KiB`)
  t.comment(`fastify-realtime adds ${withUs.lines - without.lines} lines, ${withUs.kb - without.kb} KiB`)
  t.ok(withUs.lines > without.lines, 'the tarball installed its dependencies')

  // Optional peers this app did not install: the feature that needs one says which, at register.
  const feature = async (code: string): Promise<string> => await run(process.execPath, ['--input-type=module', '-e', `
    import Fastify from 'fastify'
    import realtime from 'fastify-realtime'
    import dashboard from 'fastify-realtime/dashboard'
    const app = Fastify()
    try { ${code}; await app.ready(); console.log('started') } catch (err) { console.log(err.code, err.message) } finally { await app.close() }`], dir)
  t.match(await feature('await app.register(realtime, { metrics: true })'), /^FST_REALTIME_MISSING_PEER .*prom-client.*npm install prom-client/, 'metrics without prom-client')
  t.match(await feature('await app.register(realtime); await app.register(dashboard, { authorize: () => true })'), /^FST_REALTIME_MISSING_PEER .*uplot.*npm install uplot/, 'the dashboard without uplot')
  t.match(await feature('await app.register(realtime, { msgpack: true })'), /^FST_REALTIME_MISSING_PEER .*msgpackr.*npm install msgpackr/, 'MessagePack without msgpackr')
  t.match(await feature('await app.register(realtime)'), /^started/, 'the plugin itself needs none of them')
  // The AsyncAPI CLI on a TypeScript contract in a project without tsx: what to do, exit 1.
  await writeFile(join(dir, 'contract.ts'), 'export const contract = { routes: {} }\n')
  const refused = await run(join(dir, 'node_modules', '.bin', 'fastify-realtime'), ['asyncapi', 'contract.ts'], dir).then(() => null, (err: Error) => err)
  t.match(refused?.message, /contract\.ts is TypeScript.*npm install --save-dev tsx/, 'the CLI says how to read a .ts contract')
  t.equal((refused?.cause as { code?: number } | undefined)?.code, 1, 'and exits 1')
})

t.test('a CommonJS consumer on the oldest fastify and TypeBox of our peer ranges, without ioredis', async (t) => {
  const dir = join(tmp, 'oldest')
  await consumer(dir, 'commonjs', {
    'fastify-realtime': `file:${tarball}`,
    fastify: oldest('fastify'),
    '@sinclair/typebox': oldest('@sinclair/typebox'),
    ws: installed('ws'),
    '@types/ws': installed('@types/ws'),
    '@types/node': installed('@types/node')
  }, ['smoke.ts'])
  const missing = await run(process.execPath, ['-e', "try { require.resolve('ioredis'); console.log('installed') } catch { console.log('absent') }"], dir)
  t.equal(missing.trim(), 'absent', 'ioredis, an optional peer, is not installed')
  const [result] = await check(dir, 'node16', ['smoke.ts'])
  t.match(result, { ...expected, fastify: oldest('fastify') }, 'CommonJS, module node16')
  const typebox = JSON.parse(readFileSync(join(dir, 'node_modules', '@sinclair', 'typebox', 'package.json'), 'utf8')) as { version: string }
  t.equal(typebox.version, oldest('@sinclair/typebox'), 'on the oldest TypeBox')
  // Not asserted: fastify 5.0.0 itself wants fast-json-stringify ^6 and the newest
  // @fastify/fast-json-stringify-compiler its range admits wants ^7.3, so this tree has two
  // whatever our range (^6 || ^7, which shares one of them).
  t.comment(`fast-json-stringify copies on the oldest fastify: ${(await fastJsonStringifyCopies(dir)).length}`)
})
