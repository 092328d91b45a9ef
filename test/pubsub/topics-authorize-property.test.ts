// Property: whatever topic name a client makes up, it never receives a publication
// unless `authorize` said yes (returned exactly `true`) for exactly that name. Names
// come from fast-check and mix path tricks (`..`, `*`, `#`, `+`, runs of `/`), NUL,
// look-alikes (fullwidth solidus U+FF0F, Cyrillic letters for Latin ones, zero-width
// and bidirectional marks), percent-encodings, 1 KB strings and coercible numbers.
//
// For each run a fresh client subscribes to every generated name and publishes to
// it; then the server publishes to every name and to the protected ones, and a last
// publication on an open topic marks the end of the deliveries. Checked:
//   - a subscribe or publish succeeds only where authorize returned true for that
//     exact name and action; a refused or malformed one is FORBIDDEN (or
//     VALIDATION_FAILED / LIMIT_EXCEEDED / ALREADY_SUBSCRIBED), never a success;
//   - every message the client receives is for a topic it was authorized on, and
//     carries what was published to that very topic;
//   - nothing authorized is lost: each authorized subscription gets its publications.
//
// Environment:
//   AUTHZ_RUNS  fast-check runs (default 150); AUTHZ_SEED  fast-check seed
import t from 'tap'
import fc from 'fast-check'
import { Type } from '@sinclair/typebox'
import type { AuthorizeContext } from '../../lib/index.js'
import { build, connect, type Frame } from '../fixtures/helpers.js'

const RUNS = Number(process.env.AUTHZ_RUNS ?? 150)
const SEED = process.env.AUTHZ_SEED === undefined ? undefined : Number(process.env.AUTHZ_SEED)
const SENTINEL = 'sentinel'

const Message = Type.Object({ topic: Type.String(), n: Type.Integer() })

const options = {
  rateLimit: { rate: 1e9, burst: 1e9 },
  errorBudget: { max: 1e9, window: 1000 },
  maxConnectionsPerIp: 100_000
}

/** Name segments chosen to look like, or resolve to, the protected ones. */
const confusables = [
  'public', 'private', 'secret', 'PUBLIC', 'Public',
  'publ\u0456c', // Cyrillic і
  '\u0440ublic', // Cyrillic р
  'public\u0000', '\u0000public',
  'pub\u200blic', // zero-width space
  'public\u200f', '\u202epublic', '\u200epublic', // RTL / LTR marks, RTL override
  'publ\u0131c', // dotless i
  'ｐｕｂｌｉｃ', // fullwidth
  'public\ufeff',
  'secre\u0442', // Cyrillic т
  '%70ublic', 'public%00', '%2e%2e', '%2f', 'pub%6cic',
  '..', '.', '*', '#', '+', '>', '**', '', ' ', '\\', '/',
  '1', '01', '1.0', ' 1', '0x1', '1e0', '+1', '-0', '2', '１'
]
const separators = ['/', '//', '\uff0f', '\u2215', '\u2044', '%2F', '\\', '']
const prefixes = ['room', 'admin', 'user', 'truthy', 'throws', 'ROOM', 'r\u043em', '', SENTINEL, 'room/public', 'admin/secret']

const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...confusables) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }).map((s) => encodeURIComponent(s)) }
)

const topicName = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('room/public', 'room/private', 'admin/secret', 'user/1', 'user/2', 'truthy/x', 'throws/x', SENTINEL) },
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...prefixes), fc.constantFrom(...separators), segment, fc.option(fc.tuple(fc.constantFrom(...separators), segment), { nil: undefined })).map(([p, s, a, rest]) => p + s + a + (rest === undefined ? '' : rest[0] + rest[1])) },
  { weight: 1, arbitrary: fc.integer({ min: 250, max: 1100 }).chain((n) => fc.constantFrom('room/', 'admin/', '').map((p) => p + 'p'.repeat(n))) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('room', 'admin', 'user').chain((p) => fc.integer({ min: 1, max: 8 }).map((k) => p + '/'.repeat(k) + 'public')) }
)

const REFUSALS = new Set(['FORBIDDEN', 'VALIDATION_FAILED', 'LIMIT_EXCEEDED', 'ALREADY_SUBSCRIBED'])

t.test('authorize: no delivery where it said no, whatever the topic name', async (t) => {
  /** connectionId → action → topic → whether authorize returned exactly true. */
  const decisions = new Map<string, Map<string, Map<string, boolean>>>()
  let calls = 0
  const record = (ctx: AuthorizeContext<any, any>, result: unknown): unknown => {
    calls++
    let byAction = decisions.get(ctx.connection.id)
    if (byAction === undefined) decisions.set(ctx.connection.id, byAction = new Map())
    let byTopic = byAction.get(ctx.action)
    if (byTopic === undefined) byAction.set(ctx.action, byTopic = new Map())
    // Any `false` for a name wins over an earlier `true` (a re-check that refused).
    byTopic.set(ctx.topic, (byTopic.get(ctx.topic) ?? true) && result === true)
    return result
  }

  const { app, url } = await build(t, options, (app) => {
    app.realtime.topic(SENTINEL, { message: Message })
    app.realtime.topic('room/:name', {
      message: Message,
      clientPublish: true,
      // Alternately sync and async, so both paths are exercised.
      authorize: (ctx) => {
        const allowed = record(ctx, ctx.params.name === 'public') as boolean
        return calls % 2 === 0 ? allowed : Promise.resolve(allowed)
      }
    })
    app.realtime.topic('admin/secret', { message: Message, clientPublish: true, authorize: (ctx) => record(ctx, false) as boolean })
    // Params are coerced before authorize sees them: "01", "1.0" and "0x1" all become 1.
    app.realtime.topic('user/:id', {
      params: Type.Object({ id: Type.Integer() }),
      message: Message,
      clientPublish: true,
      authorize: (ctx) => record(ctx, ctx.params.id === 1) as boolean
    })
    // Truthy is not yes: only `true` grants.
    app.realtime.topic('truthy/:x', { message: Message, clientPublish: true, authorize: (ctx) => record(ctx, 'yes') as boolean })
    // A throwing authorize refuses too (answered INTERNAL: the app failed, not the client).
    app.realtime.topic('throws/:x', {
      message: Message,
      clientPublish: true,
      authorize: (ctx) => { record(ctx, false); throw new Error('authorize failed') }
    })
  })

  let runs = 0
  let granted = 0
  let refused = 0
  let delivered = 0
  let published = 0

  await fc.assert(fc.asyncProperty(fc.array(topicName, { minLength: 1, maxLength: 12 }), async (names) => {
    runs++
    const client = await connect(t, url, { welcome: false })
    const welcome = await client.nextOfType('welcome')
    const id: string = welcome.data.connectionId
    const allowed = (action: string, topic: string) => decisions.get(id)?.get(action)?.get(topic) === true
    try {
      await client.request('subscribe', { topic: SENTINEL })
      // Subscribe to every name, pipelined: subscribes are answered in order.
      const subscribes = names.map((name) => client.request('subscribe', { topic: name }))
      const answers = await Promise.all(subscribes)
      const subscribed = new Set<string>()
      answers.forEach((answer, i) => {
        const name = names[i]
        if (answer.type === 'reply') {
          if (!allowed('subscribe', name)) throw new Error(`subscribe to ${JSON.stringify(name)} succeeded without authorize saying yes`)
          if (answer.data.topic !== name) throw new Error(`subscribe reply names ${JSON.stringify(answer.data.topic)} for ${JSON.stringify(name)}`)
          subscribed.add(name)
          granted++
        } else {
          const code = answer.error?.code as string
          const throwing = name.startsWith('throws/') && code === 'INTERNAL'
          if (!REFUSALS.has(code) && !throwing) throw new Error(`subscribe to ${JSON.stringify(name)}: unexpected ${JSON.stringify(answer)}`)
          if (code === 'FORBIDDEN' && allowed('subscribe', name) && !subscribed.has(name)) {
            throw new Error(`subscribe to ${JSON.stringify(name)} FORBIDDEN although authorize said yes`)
          }
          refused++
        }
      })
      // The client publishes to every name; only authorized ones may be accepted.
      let n = 0
      const sent = new Map<string, number[]>()
      const note = (topic: string, k: number) => { const list = sent.get(topic) ?? []; list.push(k); sent.set(topic, list) }
      const publishes = await Promise.all(names.map((name) => {
        const k = ++n
        return client.request('publish', { topic: name, data: { topic: name, n: k } }).then((answer) => ({ name, k, answer }))
      }))
      for (const { name, k, answer } of publishes) {
        if (answer.type === 'reply') {
          if (!allowed('publish', name)) throw new Error(`publish to ${JSON.stringify(name)} accepted without authorize saying yes`)
          note(name, k)
        } else {
          const code = answer.error?.code as string
          if (!REFUSALS.has(code) && !(name.startsWith('throws/') && code === 'INTERNAL')) {
            throw new Error(`publish to ${JSON.stringify(name)}: unexpected ${JSON.stringify(answer)}`)
          }
        }
      }
      // The server publishes to every generated name and to the protected ones.
      for (const topic of [...names, 'room/public', 'room/private', 'admin/secret', 'user/1', 'truthy/x']) {
        const k = ++n
        try {
          await app.realtime.publish(topic, { topic, n: k })
          note(topic, k)
          published++
        } catch (err) {
          // A name no pattern declares cannot be published to at all.
          if ((err as { code?: string }).code !== 'FST_REALTIME_UNKNOWN_TOPIC') throw err
        }
      }
      // The end marker; the memory broker delivers in publication order.
      await app.realtime.publish(SENTINEL, { topic: SENTINEL, n: -1 })
      await client.next((f) => f.type === 'message' && f.topic === SENTINEL && f.data?.n === -1)

      const received = new Map<string, number[]>()
      for (const f of client.frames.splice(0) as Frame[]) {
        if (f.type !== 'message') throw new Error(`unexpected frame ${JSON.stringify(f)}`)
        const topic = f.topic as string
        if (f.data?.topic !== topic) throw new Error(`message on ${JSON.stringify(topic)} published to ${JSON.stringify(f.data?.topic)}`)
        if (topic === SENTINEL) continue // the open topic, subscribed before the run
        if (!subscribed.has(topic)) throw new Error(`message on ${JSON.stringify(topic)}, which was never granted`)
        if (!allowed('subscribe', topic)) throw new Error(`message on ${JSON.stringify(topic)}, refused by authorize`)
        const list = received.get(topic) ?? []
        list.push(f.data.n)
        received.set(topic, list)
        delivered++
      }
      // Nothing owed is missing: each granted subscription got its topic's publications.
      // (Compared as sets: concurrent client publishes to one topic may take any order.)
      for (const topic of subscribed) {
        const expected = (sent.get(topic) ?? []).sort((a, b) => a - b)
        const got = (received.get(topic) ?? []).sort((a, b) => a - b)
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          throw new Error(`on ${JSON.stringify(topic)} expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`)
        }
      }
    } finally {
      client.close()
      await client.closed
      decisions.delete(id)
    }
  }), { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) })

  t.equal(runs, RUNS, `${RUNS} runs`)
  t.ok(granted > 0, `${granted} subscriptions granted`)
  t.ok(refused > 0, `${refused} subscriptions refused`)
  t.ok(delivered > 0, `${delivered} messages delivered (${published} server publications)`)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})
