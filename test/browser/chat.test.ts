// The chat page (examples/chat/public/index.html on fastify-realtime/client) in
// headless Chromium: two pages talk, see each other type and come and go, and live
// through a server restart (same port, same broker) without losing a post.
//
// Needs Chromium at /usr/bin/chromium (or CHROMIUM_PATH). Without it the browser part
// is skipped with a message, except under CI=true, where its absence is a failure.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { Page } from 'playwright-core'
import { MemoryBroker } from '../../lib/index.js'
import { chromiumOrSkip, launch, startChat } from '../fixtures/chromium.js'
import { until } from '../fixtures/helpers.js'

t.test('the chat server serves the browser build of the client', async (t) => {
  const { port } = await startChat(t, new MemoryBroker())
  const res = await fetch(`http://127.0.0.1:${port}/client.js`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/javascript/)
  const js = await res.text()
  t.match(js, /export\s*\{[^}]*createClient/, 'an ES module exporting createClient')
  t.notMatch(js, /\bfrom\s*["']node:|require\(/, 'nothing from Node in it')
  const page = await (await fetch(`http://127.0.0.1:${port}/`)).text()
  t.match(page, /import \{ createClient \} from '\/client\.js'/, 'the page uses it')
})

if (chromiumOrSkip(t, 'the chat page in Chromium')) {
  t.test('the chat page in Chromium: posts, typing, presence, and a server restart', { timeout: 60_000 }, async (t) => {
    const broker = new MemoryBroker()
    const first = await startChat(t, broker)
    const port = first.port
    const base = `http://127.0.0.1:${port}/`

    const browser = await launch(t)
    const problems = browser.problems
    const open = (name: string): Promise<Page> => browser.open(base, name)
    const signIn = async (page: Page, name: string): Promise<void> => {
      await page.fill('#name', name)
      await page.click('#signin')
      await page.waitForSelector('#state[data-state="open"]')
      await page.waitForFunction(() => document.getElementById('room-title')?.textContent === '#general')
    }
    const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText()
    const waitText = (page: Page, selector: string, expected: string): Promise<unknown> =>
      page.waitForFunction(([s, e]) => (document.querySelector(s)?.textContent ?? '') === e, [selector, expected] as const)
    const presence = async (page: Page, names: string[]): Promise<void> => {
      await page.waitForFunction((want) => {
        const got = Array.from(document.querySelectorAll('#presence li'), (li) => li.textContent)
        return JSON.stringify(got) === JSON.stringify(want)
      }, names)
    }
    const posts = (page: Page, needle: string): Promise<number> => page.locator('#messages li', { hasText: needle }).count()

    const alice = await open('alice')
    // Alice's client takes its backoff's random source when she signs in: this one draws
    // from the top of each window while the test says so (to see the countdown tick
    // below), and is Math.random otherwise.
    await alice.evaluate(() => {
      const random = Math.random
      const page = window as unknown as { highRandom?: boolean }
      Math.random = () => page.highRandom === true ? 0.95 + 0.0499 * random() : random()
    })
    const bob = await open('bob')
    await signIn(alice, 'alice')
    await signIn(bob, 'bob')

    // Presence: each page lists both.
    await presence(alice, ['alice', 'bob'])
    await presence(bob, ['alice', 'bob'])
    t.pass('presence lists both users on both pages')

    // Typing shows on the other page, and clears when the text is cleared.
    await alice.fill('#text', 'hello bob')
    await waitText(bob, '#typing', 'alice is typing…')
    t.equal(await text(alice, '#typing'), '', 'the typer does not see itself typing')
    await alice.fill('#text', '')
    await waitText(bob, '#typing', '')
    t.pass('typing shows and clears')

    // A post from one page appears in the other, once.
    await alice.fill('#text', 'hello bob')
    await waitText(bob, '#typing', 'alice is typing…')
    // Counts, after every change to alice's list, the lines showing the post: the pending
    // line and the post arrive in separate tasks, so a moment with both is seen here.
    await alice.evaluate(() => {
      const list = document.querySelector('#messages') as HTMLElement
      const seen = { most: 0 }
      ;(window as unknown as { seen: typeof seen }).seen = seen
      new MutationObserver(() => {
        const lines = Array.from(list.querySelectorAll('li')).filter((li) => li.textContent?.includes('hello bob') === true)
        seen.most = Math.max(seen.most, lines.length)
      }).observe(list, { childList: true, subtree: true })
    })
    await alice.click('#send')
    await bob.locator('#messages li', { hasText: 'hello bob' }).waitFor()
    await waitText(bob, '#typing', '')
    t.equal(await posts(bob, 'hello bob'), 1, 'bob sees alice\'s post, and alice stopped typing')
    // The author's pending line gives way to the post itself; the post never shows twice,
    // whichever of the publication and the reply reaches the page first.
    await alice.locator('#messages li.mine[data-id]', { hasText: 'hello bob' }).waitFor()
    t.equal(await posts(alice, 'hello bob'), 1, 'alice sees her post once')
    t.equal(await alice.evaluate(() => (window as unknown as { seen: { most: number } }).seen.most), 1, 'and never saw it twice on the way')
    await bob.fill('#text', 'hi alice')
    await bob.press('#text', 'Enter')
    await alice.locator('#messages li', { hasText: 'hi alice' }).waitFor()
    t.pass('and back')

    // Presence follows people leaving and coming back.
    await bob.click('#signout')
    await presence(alice, ['alice'])
    await signIn(bob, 'bob')
    await presence(alice, ['alice', 'bob'])
    t.pass('presence updates on leave and join')
    await bob.locator('#messages li', { hasText: 'hi alice' }).waitFor()
    t.pass('history shows recent posts on joining')

    // Every change of alice's indicator, with when it happened (the page's clock).
    await alice.evaluate(() => {
      const state = document.getElementById('state') as HTMLElement
      const log: Array<{ at: number, text: string }> = []
      const page = window as unknown as { stateLog: typeof log, highRandom?: boolean }
      page.stateLog = log
      new MutationObserver(() => {
        const text = state.textContent ?? ''
        if (log.at(-1)?.text !== text) log.push({ at: performance.now(), text })
      }).observe(state, { childList: true, characterData: true, subtree: true })
      page.highRandom = true
    })

    // The server goes away...
    await first.close()
    await alice.waitForSelector('#state[data-state="reconnecting"]')
    await bob.waitForSelector('#state[data-state="reconnecting"]')
    const words = await text(alice, '#state')
    t.match(words, /server is restarting/, `the indicator says why, in words: "${words}"`)
    t.notMatch(words, /\b1\d{3}\b|\b4\d{3}\b/, 'with no close code')
    // The countdown ticks. The first retry comes within 1 s (its window), too soon to
    // count down; it fails (nothing listens), and the next one, drawn near the top of
    // its 2 s window, shows "Reconnecting in 2 s", which must turn into "… 1 s" a second
    // later by itself: nothing else happens on the page meanwhile.
    const tick = await alice.waitForFunction(() => {
      const log = (window as unknown as { stateLog: Array<{ at: number, text: string }> }).stateLog
      const i = log.findIndex((entry) => /^Reconnecting in 2 s\b/.test(entry.text))
      if (i < 0 || i + 1 >= log.length) return null
      return { from: log[i].text, to: log[i + 1].text, ms: Math.round(log[i + 1].at - log[i].at) }
    }, undefined, { timeout: 10_000, polling: 50 })
    const { from, to, ms } = await tick.jsonValue() as { from: string, to: string, ms: number }
    await alice.evaluate(() => { delete (window as unknown as { highRandom?: boolean }).highRandom })
    t.match(to, /^Reconnecting in 1 s\b/, `the countdown ticks: "${from}", then "${to}"`)
    t.ok(ms >= 900 && ms < 1800, `about a second later (${ms} ms)`)
    // ...a post written meanwhile waits in alice's client...
    await alice.fill('#text', 'written while offline')
    await alice.click('#send')
    // ...and one is published before the new server accepts anyone.
    const second = await startChat(t, broker, port, async (app) => {
      await app.realtime.publish('room/general', {
        kind: 'chat', id: randomUUID(), user: { id: 'carol', name: 'carol' }, text: 'posted while you were away', at: Date.now()
      })
    })
    t.equal(second.port, port, 'the new server listens on the same port')

    for (const page of [alice, bob]) {
      await page.waitForSelector('#state[data-state="open"]')
      await page.locator('#messages li', { hasText: 'posted while you were away' }).waitFor()
      await page.locator('#messages li', { hasText: 'written while offline' }).waitFor()
      const who = page === alice ? 'alice' : 'bob'
      t.equal(await posts(page, 'hello bob'), 1, `${who}: a post from before the restart is not shown twice`)
      t.equal(await posts(page, 'posted while you were away'), 1, `${who}: the post published while away is recovered, once`)
      t.equal(await posts(page, 'written while offline'), 1, `${who}: the post queued while offline went out after reconnecting, once`)
    }
    t.pass('both pages reconnected and show what they missed')
    await presence(alice, ['alice', 'bob'])
    await presence(bob, ['alice', 'bob'])
    t.pass('presence is right after the restart')
    t.same(problems, [], 'no page errors')
  })

  t.test('the chat page in Chromium: one user in two tabs is online until the last tab closes', { timeout: 60_000 }, async (t) => {
    const chat = await startChat(t, new MemoryBroker())
    const { open } = await launch(t)
    // Each page signs in by name on its own: two pages with one name are two tabs of one user.
    const signIn = async (name: string): Promise<Page> => {
      const page = await open(`http://127.0.0.1:${chat.port}/`, name)
      await page.fill('#name', name)
      await page.click('#signin')
      await page.waitForSelector('#state[data-state="open"]')
      await page.waitForFunction(() => document.getElementById('room-title')?.textContent === '#general')
      return page
    }
    const online = (page: Page, names: string[]): Promise<unknown> => page.waitForFunction((want) => {
      const got = Array.from(document.querySelectorAll('#online li'), (li) => li.textContent)
      return JSON.stringify(got) === JSON.stringify(want)
    }, names)
    const connectionsOf = (user: string): number => chat.app.realtime.connections.byUser(user).length

    const bob = await signIn('bob')
    const ann1 = await signIn('ann')
    const ann2 = await signIn('ann')
    await online(bob, ['ann', 'bob'])
    await online(ann2, ['ann', 'bob'])
    await bob.locator('#messages li', { hasText: 'ann joined #general' }).waitFor()
    t.equal(await bob.locator('#messages li', { hasText: 'ann joined #general' }).count(), 1, 'bob is told once that ann joined, though she has two tabs')

    await ann1.close()
    await until(() => connectionsOf('ann') === 1)
    // The server has seen the first tab go: ann is still online and still in the room.
    await online(bob, ['ann', 'bob'])
    t.equal(await bob.locator('#messages li', { hasText: 'ann left' }).count(), 0, 'closing one tab is not leaving')

    await ann2.close()
    await online(bob, ['bob'])
    await bob.locator('#messages li', { hasText: 'ann left #general' }).waitFor()
    t.pass('when her last tab closes, ann goes offline and leaves the room')
  })
}
