// The dashboard in headless Chromium, under load from a few dozen clients: the charts
// and tiles show non-zero figures, the table lists the clients and searches them, and
// "disconnect" (per connection, per user) closes those clients with 4503.
//
// Needs Chromium at /usr/bin/chromium (or CHROMIUM_PATH). Without it the browser part
// is skipped with a message, except under CI=true, where its absence is a failure.
// DASHBOARD_SCREENSHOT=docs/dashboard.png writes the README's screenshot.
import t from 'tap'
import { statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import realtime from '../../lib/index.js'
import realtimeDashboard from '../../lib/dashboard/index.js'
import { connect, type TestClient } from '../fixtures/helpers.js'
import { CHROMIUM, CHROMIUM_ARGS, chromiumOrSkip } from '../fixtures/chromium.js'

const CLIENTS = 30

if (chromiumOrSkip(t, 'the dashboard in Chromium')) {
  t.test('the dashboard in Chromium, under load', { timeout: 90_000 }, async (t) => {
    const { chromium } = await import('playwright-core')
    const app = Fastify()
    await app.register(realtime, { getUser: (request) => request.headers['x-user'] })
    await app.register(realtimeDashboard, {
      path: '/dashboard',
      interval: 500,
      authorize: (request) => /(^|;\s*)operator=yes(;|$)/.test(request.headers.cookie ?? '')
    })
    app.realtime.topic('room/:name', { message: Type.Object({ n: Type.Integer(), text: Type.String() }) })
    app.realtime.route({ type: 'echo', schema: { data: Type.String(), reply: Type.String() }, handler: async (data) => data })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    const port = (app.server.address() as { port: number }).port

    const clients: TestClient[] = []
    for (let i = 0; i < CLIENTS; i++) {
      const client = await connect(t, `ws://127.0.0.1:${port}/ws`, { headers: { 'x-user': `user-${i}` } })
      await client.request('subscribe', { topic: i % 2 === 0 ? 'room/even' : 'room/odd' })
      clients.push(client)
    }
    // The load: publications to both rooms and requests from a few clients, every 20 ms.
    let n = 0
    const load = setInterval(() => {
      n++
      app.realtime.publish(n % 2 === 0 ? 'room/even' : 'room/odd', { n, text: 'hello' }).catch(() => {})
      for (let k = 0; k < 4; k++) {
        const client = clients[(n * 4 + k) % CLIENTS]
        if (client.ws.readyState === 1) client.send({ type: 'echo', id: n, data: 'ping' })
      }
      for (const client of clients) client.frames.length = 0
    }, 20).unref()
    t.teardown(() => clearInterval(load))

    const profile = await mkdtemp(join(tmpdir(), 'realtime-dashboard-'))
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
    t.teardown(async () => {
      await browser.close()
      await rm(profile, { recursive: true, force: true })
    })
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } })
    context.setDefaultTimeout(20_000)
    const problems: string[] = []
    const refused = await context.newPage()
    t.equal((await refused.goto(`http://127.0.0.1:${port}/dashboard`))?.status(), 403, 'no cookie: refused')
    await context.addCookies([{ name: 'operator', value: 'yes', domain: '127.0.0.1', path: '/' }])
    const page = await context.newPage()
    page.on('pageerror', (err) => { problems.push(err.message) })
    page.on('console', (msg) => { if (msg.type() === 'error') problems.push(msg.text()) })
    await page.goto(`http://127.0.0.1:${port}/dashboard`)

    await page.waitForSelector('#link:text("live")')
    // A string, not a function: tsx would wrap named inner functions in a helper the page lacks.
    await page.waitForFunction(`(() => {
      const tile = (id) => Number(document.getElementById(id).textContent)
      return tile('tile-connections') >= ${CLIENTS + 1} && tile('tile-in') > 0 && tile('tile-out') > 0 && tile('tile-deliveries') > 0 && tile('tile-p50') > 0 && tile('tile-cpu') > 0 && tile('tile-rss') > 0
    })()`)
    t.pass('the tiles show connections, messages, deliveries, latency, CPU and memory')
    const charts = await page.evaluate(() => {
      const { charts } = (window as unknown as { realtimeDashboard: { charts: Record<string, { data: Array<Array<number | null>> }> } }).realtimeDashboard
      return Object.fromEntries(Object.entries(charts).map(([name, chart]) => [name, chart.data.slice(1).map((s) => Math.max(0, ...s.map((v) => v ?? 0)))]))
    })
    t.ok(charts.connections[0] >= CLIENTS, 'the connections chart')
    t.ok(charts.messages.every((max) => max > 0), 'messages in and out per second are charted')
    t.ok(charts.deliveries[0] > 0, 'deliveries per second are charted')
    t.ok(charts.latency.every((max) => max > 0), 'p50 and p99 are charted')
    t.equal(await page.locator('.uplot canvas').count(), 5, 'five charts drawn')
    t.match(await page.locator('#patterns').innerText(), /room\/:name\s+30/, 'subscribers by pattern')

    await page.waitForFunction((clients) => document.querySelectorAll('#table tbody tr').length >= clients + 1, CLIENTS)
    t.pass('the table lists every client')

    // Search, then disconnect one connection from its row.
    await page.fill('#search', 'user-7')
    await page.waitForFunction(() => document.querySelectorAll('#table tbody tr').length === 1)
    await page.click('#table tbody tr button[name="disconnect-connection"]')
    t.same(await clients[7].closed, { code: 4503, reason: 'disconnected by an operator' })
    await page.waitForSelector('#notice:text("Disconnected connection")')
    await page.waitForFunction(() => document.querySelectorAll('#table tbody tr').length === 0)
    t.pass('the row is gone')

    await page.fill('#search', 'user-8')
    await page.waitForFunction(() => document.querySelectorAll('#table tbody tr').length === 1)
    await page.click('#table tbody tr button[name="disconnect-user"]')
    t.equal((await clients[8].closed).code, 4503, 'disconnect user: 4503')
    await page.waitForSelector('#notice:text("Disconnected user user-8")')

    await page.fill('#search', '')
    await page.waitForFunction(() => ((window as unknown as { realtimeDashboard: { series: { t: number[] } } }).realtimeDashboard.series.t.length >= 16))
    const shot = process.env.DASHBOARD_SCREENSHOT ?? join(profile, 'dashboard.png')
    await page.screenshot({ path: shot })
    t.ok(statSync(shot).size < 200_000, 'the screenshot is under 200 KB')
    t.same(problems, [], 'no error on the page')
  })
}
