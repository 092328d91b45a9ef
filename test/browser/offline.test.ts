// The chat page in headless Chromium while one user's browser goes offline for 15 s
// (playwright's offline mode: the browser fires `offline`, the socket stays silently up
// or stalls, as on a network that drops without a reset). The page must say so within a
// second, grey its presence list, hold a post written meanwhile as pending, and when the
// network is back be connected within 3 s with every post missed, once and in order,
// and its own post delivered once to the other user.
import t from 'tap'
import type { Page } from 'playwright-core'
import { MemoryBroker } from '../../lib/index.js'
import { chromiumOrSkip, launch, startChat } from '../fixtures/chromium.js'

const OFFLINE_MS = 15_000

if (chromiumOrSkip(t, 'the chat page offline in Chromium')) {
  t.test('offline for 15 s: said within 1 s, back within 3 s, nothing missed or doubled', { timeout: 90_000 }, async (t) => {
    const { port } = await startChat(t, new MemoryBroker())
    const base = `http://127.0.0.1:${port}/`
    // Two browser contexts: offline mode is per context, so bob stays online.
    const alice = await launch(t)
    const bob = await launch(t)
    const a = await alice.open(base, 'alice')
    const b = await bob.open(base, 'bob')
    const signIn = async (page: Page, name: string): Promise<void> => {
      await page.fill('#name', name)
      await page.click('#signin')
      await page.waitForSelector('#state[data-state="open"]')
      await page.waitForFunction(() => document.getElementById('room-title')?.textContent === '#general')
    }
    await signIn(a, 'alice')
    await signIn(b, 'bob')
    const presence = (page: Page, names: string[]): Promise<unknown> => page.waitForFunction((want) =>
      JSON.stringify(Array.from(document.querySelectorAll('#presence li'), (li) => li.textContent)) === JSON.stringify(want), names)
    await presence(a, ['alice', 'bob'])

    /** The texts of the chat posts a page shows (pending ones excluded), in order. */
    const shown = (page: Page): Promise<string[]> => page.evaluate(() =>
      Array.from(document.querySelectorAll('#messages li[data-id]'), (li) => li.lastChild?.textContent ?? ''))

    await alice.context.setOffline(true)
    const cutAt = Date.now()
    await a.waitForFunction(() => document.getElementById('state')?.dataset.state !== 'open', undefined, { timeout: 1000 })
    t.ok(Date.now() - cutAt <= 1000, `the page left "open" ${Date.now() - cutAt} ms after going offline`)
    const words = await a.locator('#state').innerText()
    t.match(words, /offline/i, `it says offline, in words: "${words}"`)
    t.equal(await a.locator('#presence').getAttribute('data-stale'), '', 'presence is greyed')

    // Bob posts while alice is away; alice writes one post of her own.
    const missed = Array.from({ length: 20 }, (_, i) => `while away ${i + 1}`)
    for (const text of missed) {
      await b.fill('#text', text)
      await b.press('#text', 'Enter')
    }
    await a.fill('#text', 'written offline')
    await a.press('#text', 'Enter')
    const pending = a.locator('#messages li.pending', { hasText: 'written offline' })
    await pending.waitFor()
    t.match(await pending.innerText(), /will be sent when the connection is back/, 'her post shows as pending, not failed')

    // The rest of the 15 s, checking that the page never claims to be connected.
    const states = new Set<string>()
    while (Date.now() - cutAt < OFFLINE_MS) {
      states.add(await a.locator('#state').getAttribute('data-state') ?? '')
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    t.notOk(states.has('open'), `never "open" while offline (saw ${[...states].join(', ')})`)
    t.equal(await a.locator('#messages li.failed').count(), 0, 'nothing reported as failed')

    await alice.context.setOffline(false)
    const backAt = Date.now()
    await a.waitForSelector('#state[data-state="open"]', { timeout: 3000 })
    t.ok(Date.now() - backAt <= 3000, `connected ${Date.now() - backAt} ms after the network came back`)

    await a.waitForFunction((n) => document.querySelectorAll('#messages li[data-id]').length >= n, missed.length + 1)
    await b.locator('#messages li[data-id]', { hasText: 'written offline' }).waitFor()
    await a.waitForFunction(() => document.querySelectorAll('#messages li.pending').length === 0)
    const onAlice = await shown(a)
    t.same(onAlice.filter((text) => text.startsWith('while away')), missed, 'alice got every post missed, once each, in order')
    t.equal(onAlice.filter((text) => text === 'written offline').length, 1, 'and her own post once')
    // Give a duplicate the time to show up, were there one.
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal((await shown(b)).filter((text) => text === 'written offline').length, 1, 'bob sees her offline post exactly once')
    t.equal(await a.locator('#presence').getAttribute('data-stale'), null, 'presence is live again')
    await presence(a, ['alice', 'bob'])
    t.same([...alice.problems, ...bob.problems], [], 'no page errors')
  })
}
