// Count presence (`presence: { mode: 'count' }`): with thousands of members joining and
// leaving, subscribers hear the number of members, at most once per interval, and never
// a `join` or `leave`; `presence` still lists the members.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import { build, connect, until, type Frame } from '../fixtures/helpers.js'

const MEMBERS = 5000
const INTERVAL = 200

t.test(`${MEMBERS} members joining and leaving: debounced counts, no join or leave`, async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('stadium', { message: Type.Object({ n: Type.Integer() }), presence: { mode: 'count', countInterval: INTERVAL } })
    app.realtime.topic('bad', { message: Type.Object({}) })
    // Each connection is put on the topic by the server: no frame from the crowd.
    app.realtime.addHook('onConnect', async (connection) => {
      if (connection.request.url.includes('crowd')) await app.realtime.subscribe(connection.id, 'stadium')
    })
  })
  await t.rejects(build(t, {}, (app) => { app.realtime.topic('x', { message: Type.Object({}), presence: { mode: 'count', countInterval: 0 } }) }), { code: 'FST_REALTIME_INVALID_PATTERN' })
  const watcher = await connect(t, url)
  await watcher.request('subscribe', { topic: 'stadium' })
  const log: Array<{ at: number, frame: Frame }> = []
  watcher.ws.on('message', (raw) => log.push({ at: Date.now(), frame: JSON.parse(raw.toString()) as Frame }))
  const counts = (): number[] => log.filter((e) => e.frame.type === 'presence').map((e) => e.frame.count as number)

  const crowd: WebSocket[] = []
  t.teardown(() => { for (const ws of crowd) ws.terminate() })
  const started = Date.now()
  for (let batch = 0; batch < MEMBERS; batch += 250) {
    await Promise.all(Array.from({ length: Math.min(250, MEMBERS - batch) }, async () => {
      const ws = new WebSocket(`${url}?crowd`, 'realtime.v1', { perMessageDeflate: false })
      crowd.push(ws)
      await new Promise<void>((resolve, reject) => { ws.once('message', () => resolve()); ws.once('error', reject) })
    }))
  }
  await until(() => counts().at(-1) === MEMBERS + 1, 30_000)
  const joined = Date.now()
  for (const ws of crowd.splice(0, MEMBERS / 2)) ws.close()
  await until(() => counts().at(-1) === MEMBERS / 2 + 1, 30_000)
  const left = Date.now()

  t.same(log.filter((e) => e.frame.type === 'join' || e.frame.type === 'leave'), [], 'no join or leave frame')
  const frames = log.filter((e) => e.frame.type === 'presence')
  t.ok(frames.every((e) => e.frame.topic === 'stadium'))
  // At most one count per interval (and one more at each end), however many changes came.
  const most = Math.ceil((left - started) / INTERVAL) + 2
  t.ok(frames.length <= most, `${frames.length} counts for ${MEMBERS * 1.5} changes in ${left - started} ms (at most ${most})`)
  // Not tied to how long the changes took (a busy machine stretches them): a count per
  // interval is what bounds the frames, checked above; this only says they are few.
  t.ok(frames.length < (MEMBERS * 1.5) / 10, 'far fewer frames than changes')
  t.ok(joined >= started)
  const listed = await watcher.request('presence', { topic: 'stadium' })
  t.equal(listed.data.members.length, MEMBERS / 2 + 1, '`presence` lists the members')
  t.equal(app.realtime.stats().topics.stadium, MEMBERS / 2 + 1)
})
