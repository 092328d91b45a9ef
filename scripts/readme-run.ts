// Runs the README's programs: every TypeScript block marked `<!-- readme-run: name -->` on the
// line before its fence is run against a real server, by scripts/readme-check.ts once the
// blocks type-check. A run copy of each block (and of every block that names a file, so that
// `./contract.js` resolves) is written under .readme-check/<md>-run/ with `fastify-realtime…`
// mapped to lib/ and `fastify` to scripts/readme-harness.ts (the real Fastify on port 0, its
// log kept). `name` picks the scenario below: for a snippet that uses the prelude's `app`,
// the scenario makes the app and the placeholders the snippet calls; then it drives the
// server with a real WebSocket client as the README says the program behaves. A scenario
// fails on a wrong answer, a refused connection, or any log line at warn or above.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { apps, default as Fastify, logs, urlOf } from './readme-harness.js'
import realtime from '../lib/index.js'
import { connect, type TestClient } from '../test/fixtures/helpers.js'

export interface RunBlock {
  line: number
  code: string
  file: string | null
  /** The scenario of a block marked `<!-- readme-run: name -->`. */
  run?: string
}

interface Scenario {
  /** For a snippet without its own app: makes it (registered) and the globals the snippet uses. */
  app?: () => Promise<FastifyInstance>
  /** Drives the program once it serves; `open` connects a client closed after the run. */
  drive?: (app: FastifyInstance, open: Open) => Promise<void>
  /** A program that is a test file: run by node, and passes when it exits 0. */
  process?: true
  /** How many times the program is started (nodes of one deployment); 1 by default. */
  nodes?: number
  /** Needs the Redis at REDIS_URL: skipped when none answers, unless CI is set. */
  redis?: true
  /** Ends what the program started beyond its apps (the runner closes those after). */
  end?: (apps: FastifyInstance[]) => Promise<void>
}
type Open = (options?: { headers?: Record<string, string>, welcome?: boolean }) => Promise<TestClient>

/** The chat of "The smallest server" and of `server.ts`, as its transcript shows it. */
async function chat (open: Open, reply: (data: unknown) => void): Promise<void> {
  const c = await open()
  const subscribed = await c.request('subscribe', { topic: 'room/general' })
  assert.equal(subscribed.type, 'reply', JSON.stringify(subscribed))
  assert.equal(subscribed.data.offset, 0)
  const answer = c.request('chat.send', { room: 'general', text: 'hi' })
  const message = await c.nextOfType('message')
  assert.equal(message.topic, 'room/general')
  assert.equal(message.data.text, 'hi')
  const answered = await answer
  assert.equal(answered.type, 'reply', JSON.stringify(answered))
  reply(answered.data)
  const other = await c.request('chat.send', { room: 'elsewhere', text: 'hi' })
  assert.equal(other.error?.code, 'NOT_IN_ROOM')
  c.send({ type: 'ping', id: 3 })
  assert.deepEqual(await c.next((f) => f.id === 3), { type: 'pong', id: 3 })
}

const scenarios: Record<string, Scenario> = {
  'smallest-server': {
    drive: async (_app, open) => { await chat(open, (data) => assert.deepEqual(data, { offset: 1 })) }
  },
  'contract-server': {
    drive: async (_app, open) => {
      await chat(open, (data) => {
        const { id, at } = data as { id: unknown, at: unknown }
        assert.equal(typeof id, 'string')
        assert.equal(typeof at, 'number')
      })
    }
  },
  hooks: {
    app: async () => {
      const app = Fastify()
      // The user of a connection: here a header, as an auth plugin would set it.
      await app.register(realtime, { getUser: (request) => request.headers['x-user'] })
      Object.assign(globalThis, {
        app,
        isBanned: async (user: string | undefined) => user === 'mallory',
        roomIsFull: async (room: string) => room === 'full',
        reportToSentry: () => { throw new Error('no handler failed in this run') }
      })
      return app
    },
    drive: async (app, open) => {
      const ann = await open({ headers: { 'x-user': 'ann' } })
      const bob = await open({ headers: { 'x-user': 'bob' } })
      assert.deepEqual((await ann.nextOfType('presence.online')).data, { user: 'bob' }, 'ann hears bob come online')
      const banned = await open({ headers: { 'x-user': 'mallory' }, welcome: false })
      assert.deepEqual(await banned.closed, { code: 4503, reason: 'You are banned' })
      assert.equal((await bob.request('subscribe', { topic: 'room/general' })).type, 'reply')
      assert.equal((await ann.request('subscribe', { topic: 'room/general' })).type, 'reply', 'the subscribe is not refused')
      assert.equal((await ann.request('subscribe', { topic: 'room/full' })).error?.message, 'The room is full')
      assert.equal((await ann.request('unsubscribe', { topic: 'room/general' })).type, 'reply', 'nor the unsubscribe')
      assert.deepEqual((await bob.nextOfType('message')).data, { from: 'server', text: 'ann left' }, 'bob is told ann left')
      bob.close()
      assert.deepEqual((await ann.nextOfType('presence.offline')).data.user, 'bob', 'ann hears bob go offline')
      await bob.closed
      assert.equal(app.realtime.stats().connections.active, 1, 'ann is still connected: nothing refused her')
    }
  },
  'scaling-out': {
    redis: true,
    nodes: 2,
    drive: async () => {
      const [one, two] = apps
      const a = await connect(noTeardown, urlOf(one))
      const b = await connect(noTeardown, urlOf(two))
      const topic = `room/readme-${process.pid}-${Date.now()}`
      for (const c of [a, b]) assert.equal((await c.request('subscribe', { topic })).type, 'reply')
      await one.realtime.publish(topic, { from: 'ann', text: 'hi from node one' })
      for (const c of [a, b]) assert.deepEqual((await c.nextOfType('message')).data, { from: 'ann', text: 'hi from node one' }, 'both nodes deliver it')
      a.close()
      b.close()
    },
    // The program's own shutdown: on SIGTERM, the app, then its broker.
    end: async (nodes) => {
      process.emit('SIGTERM')
      const deadline = Date.now() + 5000
      while (nodes.some((app) => app.server.listening) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  },
  asyncapi: {
    // The snippet registers the plugin itself on the app it is given.
    app: async () => {
      const app = Fastify()
      Object.assign(globalThis, { app })
      return app
    },
    drive: async (app) => {
      const base = urlOf(app, '').replace('ws://', 'http://')
      const json = await fetch(`${base}/asyncapi.json`)
      assert.equal(json.status, 200)
      const doc = await json.json() as { asyncapi: string, info: { title: string, version: string } }
      assert.equal(doc.asyncapi, '3.0.0')
      assert.deepEqual([doc.info.title, doc.info.version], ['Chat', '1.0.0'])
      const yaml = await fetch(`${base}/asyncapi.yaml`)
      assert.equal(yaml.status, 200)
      assert.match(await yaml.text(), /^asyncapi: "3\.0\.0"$/m)
      const page = await fetch(`${base}/asyncapi`, { headers: { accept: 'text/html' } })
      assert.equal(page.status, 200)
      assert.match(page.headers.get('content-type') ?? '', /text\/html/)
      const negotiated = await fetch(`${base}/asyncapi`, { headers: { accept: 'application/json' } })
      assert.equal(((await negotiated.json()) as { info: { title: string } }).info.title, 'Chat')
      assert.equal(app.realtime.asyncapi({ server: { url: 'wss://chat.example.com' } }).asyncapi, '3.0.0', 'the same, in code')
    }
  },
  'testing-your-app': { process: true },
  'testing-in-process': { process: true }
}

const noTeardown = { teardown: () => {} }

const SPECIFIERS: Record<string, string> = {
  fastify: 'scripts/readme-harness.js',
  'fastify-realtime': 'lib/index.js',
  'fastify-realtime/client': 'lib/client/index.js',
  'fastify-realtime/react': 'lib/react/index.js',
  'fastify-realtime/redis': 'lib/redis.js',
  'fastify-realtime/postgres': 'lib/postgres.js'
}

function runCopy (code: string, dir: string, root: string): string {
  return code.replace(/(from\s+|import\s*\(\s*)'(fastify(?:-realtime(?:\/\w+)?)?)'/g, (whole, head: string, specifier: string) => {
    const target = SPECIFIERS[specifier]
    if (target === undefined) return whole
    let path = relative(dir, join(root, target))
    if (!path.startsWith('.')) path = `./${path}`
    return `${head}'${path}'`
  })
}

/** Whether the Redis the README's programs use (REDIS_URL, as they read it) answers. */
async function redisAnswers (): Promise<boolean> {
  process.env.REDIS_URL ??= 'redis://127.0.0.1:6379'
  const { reachable } = await import('../test/fixtures/redis.js')
  return await reachable(process.env.REDIS_URL)
}

/** Runs the marked blocks; returns how many failed (each failure printed with its README line). */
export async function runBlocks (blocks: RunBlock[], dir: string, root: string, label: string): Promise<number> {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const paths = new Map<RunBlock, string>()
  for (const block of blocks) {
    if (block.file === null && block.run === undefined) continue
    const path = join(dir, block.file ?? `run-${block.line}.ts`)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, runCopy(block.code, dirname(path), root) + '\nexport {}\n')
    paths.set(block, path)
  }
  let failed = 0
  let ran = 0
  for (const block of blocks) {
    if (block.run === undefined) continue
    const where = `${label}:${block.line - 2} (readme-run: ${block.run})` // the marker's line
    const scenario = scenarios[block.run]
    if (scenario === undefined) {
      console.error(`${where}: no such scenario in scripts/readme-run.ts`)
      failed++
      continue
    }
    const path = paths.get(block) as string
    ran++
    if (scenario.process === true) {
      const result = spawnSync(process.execPath, ['--import', 'tsx', path], { cwd: root, encoding: 'utf8', timeout: 60_000 })
      if (result.status !== 0) {
        console.error(`${where}: exited ${String(result.status)}\n${result.stdout}${result.stderr}`)
        failed++
      }
      continue
    }
    apps.length = 0
    logs.length = 0
    const teardowns: Array<() => unknown> = []
    try {
      if (scenario.redis === true && !await redisAnswers()) {
        if (process.env.CI !== undefined) throw new Error(`no Redis at ${process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'}`)
        console.log(`${where}: skipped, no Redis at REDIS_URL`)
        ran--
        continue
      }
      const own = scenario.app === undefined ? undefined : await scenario.app()
      // A fresh module per node: each start of the program is its own instance.
      for (let node = 1; node <= (scenario.nodes ?? 1); node++) await import(`${pathToFileURL(path).href}?node=${node}`)
      const app = own ?? apps[0]
      assert.ok(app !== undefined, 'the program made no Fastify app')
      if (own !== undefined) await own.listen()
      const open: Open = async (options = {}) => await connect({ teardown: (fn) => { teardowns.push(fn) } }, urlOf(app), options)
      await scenario.drive?.(app, open)
      const bad = logs.filter((line) => (line.level as number) >= 40)
      assert.deepEqual(bad, [], 'no log line at warn or above')
    } catch (err) {
      console.error(`${where}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
      const shown = logs.filter((line) => (line.level as number) >= 40)
      if (shown.length > 0) console.error(shown.map((line) => JSON.stringify(line)).join('\n'))
      failed++
    } finally {
      for (const fn of teardowns) await fn()
      if (scenario.end !== undefined) await scenario.end([...apps]).catch((err: unknown) => { console.error(`${where}: ending it failed: ${String(err)}`); failed++ })
      for (const app of apps) await app.close()
    }
  }
  if (failed === 0) console.log(`readme-run: ${ran} program(s) of ${label} run as the README says`)
  return failed
}
