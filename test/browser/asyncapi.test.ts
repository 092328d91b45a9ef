// The chat example's AsyncAPI page in headless Chromium: it renders with nothing
// fetched from elsewhere and no script error, lists the `chat.send` route and the
// `room/{name}` channel, and shows payload schemas with examples.
//
// Needs Chromium at /usr/bin/chromium (or CHROMIUM_PATH). Without it the test is
// skipped with a message, except under CI=true, where its absence is a failure.
import t from 'tap'
import { buildChat } from '../../examples/chat/app.js'
import { CHROMIUM, CHROMIUM_ARGS, chromiumOrSkip } from '../fixtures/chromium.js'

if (chromiumOrSkip(t, 'the AsyncAPI page in Chromium')) {
  t.test('the AsyncAPI page in Chromium lists the routes and channels with their schemas', { timeout: 60_000 }, async (t) => {
    const { chromium } = await import('playwright-core')
    const app = await buildChat()
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
    t.teardown(() => browser.close())
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.setDefaultTimeout(10_000)
    const problems: string[] = []
    const requests: string[] = []
    page.on('pageerror', (err) => { problems.push(err.message) })
    page.on('console', (msg) => { if (msg.type() === 'error') problems.push(msg.text()) })
    page.on('request', (request) => { requests.push(request.url()) })

    const response = await page.goto(`${origin}/asyncapi`)
    t.equal(response?.status(), 200)
    t.equal(await page.title(), 'Chat 1.0.0 · AsyncAPI')

    const nav = await page.locator('nav').innerText()
    t.match(nav, /chat\.send/, 'the navigation lists chat.send')
    t.match(nav, /room\/\{name\}/, 'and the room/{name} channel')

    const room = page.locator('#channel-room_name')
    t.equal(await room.locator('h3').innerText(), 'room/{name}')
    t.match(await room.locator('.params').innerText(), /\{name\}/, 'with its parameter')

    const send = page.locator('#operation-chat_send')
    t.ok(await send.isVisible(), 'chat.send has its section')
    t.match(await send.locator('h4').innerText(), /client → server\s+chat\.send/)
    const schemaText = await send.locator('.schema').first().innerText()
    t.match(schemaText, /text\s+string\s+minLength: 1, maxLength: 2000/, 'its data schema with constraints')
    const exampleText = await send.locator('pre.example').first().innerText()
    t.same(JSON.parse(exampleText), { type: 'chat.send', data: { room: 'general', text: 'string' } }, 'an example frame')
    t.match(await send.locator('.reply').innerText(), /NOT_IN_ROOM/, 'its answers, with the declared error')

    // A link to a shared schema leads to it.
    await send.locator('a[href="#schema-NotInRoom"]').first().click()
    t.ok(await page.locator('#schema-NotInRoom').isVisible(), 'shared schemas are linked')

    t.same(problems, [], 'no script or console error')
    t.same(requests.filter((url) => !url.startsWith(origin)), [], 'nothing fetched from elsewhere')
    // The layout holds: the navigation beside the content, nothing wider than the window.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    t.ok(overflow <= 0, `no horizontal scroll (${overflow}px)`)
  })
}
