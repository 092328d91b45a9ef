// The package as users get it: `npm pack`, the tarball installed into throwaway consumer
// projects, each type-checked with skipLibCheck false and running a smoke script
// (connect, request, publish). One install runs the newest fastify and TypeBox (the
// versions of our own dev install) and serves three ESM projects (node16, nodenext and
// bundler resolution); the other runs the oldest versions our peer ranges admit, as a
// CommonJS project, without ioredis installed at all, which proves the main entry never
// loads it. Installs prefer the local npm cache, so only a first run downloads anything.
// `npm test` runs this file alone after the rest (test:package): its tsc runs would starve
// the timing-sensitive tests of CPU on a 2-core machine.
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> }
const fixtures = fileURLToPath(new URL('./fixtures/consumer/', import.meta.url))
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const attw = join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js')

// Three installs' worth of tsc on a shared 2-core machine: minutes, not the default 2.
t.setTimeout(600_000)

/** The version our dev install has: the newest end of the matrix. */
function installed (name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
}

/** The lowest version a peer range admits: the oldest end of the matrix. */
function oldest (name: string): string {
  const range = manifest.peerDependencies[name]
  const match = /^\^(\d+\.\d+\.\d+)$/.exec(range)
  if (match === null) throw new Error(`peerDependencies.${name} "${range}" is not a caret range; teach test/package.test.ts its lower bound`)
  return match[1]
}

/** Runs a command; on failure the error carries its output, so a test failure shows what went wrong. */
function run (command: string, args: string[], cwd: string): Promise<string> {
  // Our own `npm test` exports npm_config_* settings that must not leak into the consumers'
  // installs, and c8's coverage directory would make every child write coverage it never reads.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_') && key !== 'NODE_V8_COVERAGE'))
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
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

t.test('the tarball ships its build, sources in its maps, and a LICENSE; types are right for every resolution (attw)', async (t) => {
  const list = await run('tar', ['-tzf', tarball], tmp)
  for (const file of ['package/LICENSE', 'package/dist/index.js', 'package/dist/redis.js', 'package/dist/client/index.js', 'package/dist/cjs/index.js', 'package/dist/cjs/package.json']) {
    t.ok(list.split('\n').includes(file), file)
  }
  t.notOk(list.includes('package/lib/'), 'no TypeScript sources: the maps embed them')
  const map = JSON.parse(await run('tar', ['-xzOf', tarball, 'package/dist/index.js.map'], tmp)) as { sources: string[], sourcesContent?: string[] }
  t.equal(map.sourcesContent?.length, map.sources.length, 'every source a map names is embedded')
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
    ws: installed('ws'),
    '@types/node': installed('@types/node')
  }, ['smoke.ts', 'redis.ts'])
  // node16 and nodenext read the same declarations (dist/*.d.ts by the "import" condition);
  // the Redis entry is type-checked under the stricter two, which keeps one tsc run lighter.
  const [node16] = await check(dir, 'node16', ['smoke.ts'])
  t.match(node16, { ...expected, fastify: installed('fastify') }, 'node16: connect, request, publish')
  for (const flavour of ['nodenext', 'bundler'] as const) {
    const [smoke, redis] = await check(dir, flavour, ['smoke.ts', 'redis.ts'])
    t.match(smoke, { ...expected, fastify: installed('fastify') }, `${flavour}: connect, request, publish`)
    t.match(redis, expectedRedis, `${flavour}: fastify-realtime/redis`)
  }
})

t.test('a CommonJS consumer on the oldest fastify and TypeBox of our peer ranges, without ioredis', async (t) => {
  const dir = join(tmp, 'oldest')
  await consumer(dir, 'commonjs', {
    'fastify-realtime': `file:${tarball}`,
    fastify: oldest('fastify'),
    '@sinclair/typebox': oldest('@sinclair/typebox'),
    ws: installed('ws'),
    '@types/node': installed('@types/node')
  }, ['smoke.ts'])
  const missing = await run(process.execPath, ['-e', "try { require.resolve('ioredis'); console.log('installed') } catch { console.log('absent') }"], dir)
  t.equal(missing.trim(), 'absent', 'ioredis, an optional peer, is not installed')
  const [result] = await check(dir, 'node16', ['smoke.ts'])
  t.match(result, { ...expected, fastify: oldest('fastify') }, 'CommonJS, module node16')
  const typebox = JSON.parse(readFileSync(join(dir, 'node_modules', '@sinclair', 'typebox', 'package.json'), 'utf8')) as { version: string }
  t.equal(typebox.version, oldest('@sinclair/typebox'), 'on the oldest TypeBox')
})
