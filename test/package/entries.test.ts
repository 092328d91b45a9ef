// What each entry loads: an app that never scales out must not pay for ioredis or pg, nor one
// without metrics for prom-client (optional peers it may not even have installed). Each
// import runs in a fresh process, as an app's first import of the package would.
import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** The CommonJS modules under node_modules/<name>/ that importing `entry` (then running `then`, with the module as `entry`) loaded. */
function loadedModules (entry: string, name: string, then = ''): Promise<number> {
  const script = `
    import { createRequire } from 'node:module'
    const entry = await import(${JSON.stringify(entry)})
    ${then}
    const cache = Object.keys(createRequire(import.meta.url).cache)
    console.log(cache.filter((file) => file.includes('/node_modules/${name}/')).length)`
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${entry}: ${stderr}`, { cause: err }))
      else resolve(Number(stdout.trim()))
    })
  })
}

t.test('the main entry loads no ioredis', async (t) => {
  t.equal(await loadedModules('./lib/index.ts', 'ioredis'), 0)
  t.equal(await loadedModules('./lib/client/index.ts', 'ioredis'), 0, 'nor does the client entry')
})

t.test('prom-client is loaded only by an app that turns metrics on', async (t) => {
  const app = (metrics: boolean) => `
    const { default: Fastify } = await import('fastify')
    const app = Fastify()
    await app.register(entry.default, { metrics: ${metrics} })
    await app.ready()
    await app.close()`
  t.equal(await loadedModules('./lib/index.ts', 'prom-client', app(false)), 0, 'metrics off: not loaded')
  t.ok(await loadedModules('./lib/index.ts', 'prom-client', app(true)) > 0, 'metrics on: loaded')
})

t.test('@fastify/websocket and ws load when the plugin is registered, not when it is imported', async (t) => {
  // Most of what importing the package would cost: an app pays for them when it registers
  // the plugin, as it would registering @fastify/websocket itself.
  t.equal(await loadedModules('./lib/index.ts', 'ws'), 0, 'import: no ws')
  t.equal(await loadedModules('./lib/index.ts', '@fastify/websocket'), 0, 'import: no @fastify/websocket')
  const registered = `
    const { default: Fastify } = await import('fastify')
    const app = Fastify()
    await app.register(entry.default)
    await app.ready()
    await app.close()`
  t.ok(await loadedModules('./lib/index.ts', 'ws', registered) > 0, 'registered: ws loaded')
})

t.test('fastify-realtime/redis loads it', async (t) => {
  t.ok(await loadedModules('./lib/redis.ts', 'ioredis') > 0, 'the check above would see it')
})

t.test('pg is loaded by fastify-realtime/postgres only', async (t) => {
  t.equal(await loadedModules('./lib/index.ts', 'pg'), 0, 'not by the main entry')
  t.equal(await loadedModules('./lib/redis.ts', 'pg'), 0, 'nor by the Redis one')
  t.equal(await loadedModules('./lib/postgres.ts', 'ioredis'), 0, 'which loads no ioredis')
  t.ok(await loadedModules('./lib/postgres.ts', 'pg') > 0, 'the checks above would see it')
})
