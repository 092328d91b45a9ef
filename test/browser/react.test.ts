// fastify-realtime/react in headless Chromium against a real server: a small component
// tree (test/fixtures/react/app.ts, bundled with esbuild) subscribes and receives, shows
// presence, sends a typed request, hears an event, goes offline and recovers every
// publication missed, and unmounts leaving no socket and no window listener.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { build } from 'esbuild'
import { WebSocket } from 'ws'
import realtime from '../../lib/index.js'
import { createClient } from '../../lib/client/index.js'
import { contract } from '../fixtures/react/contract.js'
import { chromiumOrSkip, launch, listenTracked } from '../fixtures/chromium.js'
import { until } from '../fixtures/helpers.js'

const entry = fileURLToPath(new URL('../fixtures/react/app.ts', import.meta.url))

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>react</title></head>
<body><div id="root"></div><script type="module" src="/app.js"></script></body></html>`

// Counts the network and visibility listeners the page adds, before any script runs.
const COUNT_LISTENERS = `(() => {
  window.__listeners = 0
  const watched = new Set(['online', 'offline', 'visibilitychange'])
  for (const target of [window, document]) {
    const add = target.addEventListener.bind(target)
    const remove = target.removeEventListener.bind(target)
    target.addEventListener = (type, fn, o) => { if (watched.has(type)) window.__listeners++; add(type, fn, o) }
    target.removeEventListener = (type, fn, o) => { if (watched.has(type)) window.__listeners--; remove(type, fn, o) }
  }
})()`

if (chromiumOrSkip(t, 'React bindings in Chromium')) {
  t.test('a React tree: subscribe, receive, presence, request, event, offline and back, unmount', { timeout: 60_000 }, async (t) => {
    const bundle = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
      define: { 'process.env.NODE_ENV': '"development"' }
    })
    const app = Fastify()
    await app.register(realtime)
    app.realtime.topic('room/:name', { ...contract.topics['room/:name'], presence: true, history: { size: 100, ttl: 0 } })
    app.realtime.event('notice', contract.events.notice)
    app.realtime.route({
      type: 'room.post',
      schema: contract.routes['room.post'],
      handler: async ({ room, text }) => ({ offset: (await app.realtime.publish(`room/${room}`, { text })).offset })
    })
    app.get('/', (_req, reply) => reply.type('text/html').send(PAGE))
    app.get('/app.js', (_req, reply) => reply.type('text/javascript').send(bundle.outputFiles[0].text))
    const { port } = await listenTracked(t, app)

    // Someone else in the room, from Node.
    const other = createClient({ url: `ws://127.0.0.1:${port}/ws`, WebSocket, contract })
    t.teardown(() => other.close())
    await other.subscribe('room/a', () => {}).ready

    const browser = await launch(t)
    await browser.context.addInitScript(COUNT_LISTENERS)
    const page = await browser.open(`http://127.0.0.1:${port}/`, 'react')
    await page.waitForSelector('#state[data-state="open"]')
    await page.waitForSelector('#people[data-count="2"]')
    t.pass('connected, and presence lists both members')
    t.equal(app.realtime.connections.size, 2, 'StrictMode\'s double effects leave one socket')

    const texts = (): Promise<string[]> => page.locator('#messages li').allInnerTexts()
    for (const text of ['one', 'two', 'three']) await app.realtime.publish('room/a', { text })
    await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 3)
    t.same(await texts(), ['one', 'two', 'three'], 'received in order')

    await page.click('#post')
    await page.waitForFunction(() => document.getElementById('reply')?.textContent === '4')
    await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 4)
    t.pass('a typed request got its reply, and its publication arrived')

    app.realtime.broadcast('notice', { text: 'hello from the server' })
    await page.waitForFunction(() => document.getElementById('notice')?.textContent === 'hello from the server')
    t.pass('an event reached its hook')

    await browser.context.setOffline(true)
    await page.waitForSelector('#state:not([data-state="open"])', { timeout: 1000 })
    t.equal(await page.locator('#state').getAttribute('data-online'), 'false')
    t.equal(await page.locator('#people').getAttribute('data-stale'), 'true', 'presence is stale while away')
    for (const text of ['five', 'six']) await app.realtime.publish('room/a', { text })
    await browser.context.setOffline(false)
    await page.waitForSelector('#state[data-state="open"]', { timeout: 3000 })
    await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 6)
    t.same(await texts(), ['one', 'two', 'three', 'from react', 'five', 'six'], 'what was published while offline arrives, once, in order')
    await page.waitForSelector('#people[data-stale="false"][data-count="2"]')
    t.pass('presence is live again')

    t.ok(await page.evaluate(() => (window as unknown as { __listeners: number }).__listeners) > 0, 'the client listens to the network while mounted')
    await page.evaluate(() => (window as unknown as { unmountApp: () => void }).unmountApp())
    await until(() => app.realtime.connections.size === 1)
    t.pass('unmounting closed the socket')
    t.equal(await page.evaluate(() => (window as unknown as { __listeners: number }).__listeners), 0, 'and removed every window and document listener')
    t.same(browser.problems, [], 'no page errors')
  })
}
