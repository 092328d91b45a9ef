import t from 'tap'
import { randomUUID } from 'node:crypto'
import { WebSocket } from 'ws'
import { Heartbeat } from '../../lib/connection/heartbeat.js'
import type { Connection } from '../../lib/connection/connection.js'
import { build, connect, until } from '../fixtures/helpers.js'

// The wheel is driven here by run(now) with a clock of the test's, so that the schedule
// is checked exactly, with no timer and no sleep. The peers stand in for connections:
// what the heartbeat reads and calls of one, and the pings and terminations it made.
interface Peer {
  id: string
  lastSeen: number
  pingedAt: number
  heartbeatSlot: number
  pings: number[]
  terminatedAt: number
  /** Answers a ping after this many ms, or never (a dead peer). */
  answerAfter: number
}

function peers (count: number, now: number, answerAfter = 1): Peer[] {
  return Array.from({ length: count }, () => ({ id: randomUUID(), lastSeen: now, pingedAt: 0, heartbeatSlot: -1, pings: [], terminatedAt: -1, answerAfter }))
}

/** Looks of the heartbeat at any peer (a look takes the peer out of its slot: heartbeatSlot -1). */
const looks = { count: 0 }

function asConnection (peer: Peer, clock: { now: number }): Connection {
  return {
    get id () { return peer.id },
    get lastSeen () { return peer.lastSeen },
    get pingedAt () { return peer.pingedAt },
    set pingedAt (value: number) { peer.pingedAt = value },
    get heartbeatSlot () { return peer.heartbeatSlot },
    set heartbeatSlot (value: number) {
      if (value === -1) looks.count++
      peer.heartbeatSlot = value
    },
    socket: { ping: () => { peer.pings.push(clock.now) } },
    log: { debug: () => {} },
    close: () => {},
    terminate: () => { peer.terminatedAt = clock.now }
  } as unknown as Connection
}

/** Runs the wheel tick by tick from `from` to `to`, answering pings as each peer does. */
function drive (heartbeat: Heartbeat, all: Peer[], clock: { now: number }, to: number, perTick?: number[], looksPerTick?: number[]): void {
  while (clock.now < to) {
    clock.now += heartbeat.tick
    const before = perTick === undefined ? 0 : all.reduce((n, p) => n + p.pings.length, 0)
    for (const peer of all) {
      const last = peer.pings[peer.pings.length - 1]
      if (peer.answerAfter >= 0 && last !== undefined && last > peer.lastSeen && clock.now - last >= peer.answerAfter) peer.lastSeen = last + peer.answerAfter
    }
    const looked = looks.count
    heartbeat.run(clock.now)
    looksPerTick?.push(looks.count - looked)
    if (perTick !== undefined) perTick.push(all.reduce((n, p) => n + p.pings.length, 0) - before)
  }
}

t.test('20,000 connections arriving at once are pinged spread over the interval, never in one burst', async (t) => {
  const interval = 25_000
  const timeout = 10_000
  const heartbeat = new Heartbeat({ interval, timeout })
  const clock = { now: 1_000_000 }
  const all = peers(20_000, clock.now)
  for (const peer of all) heartbeat.add(asConnection(peer, clock), clock.now)
  t.equal(heartbeat.size, 20_000)
  const perTick: number[] = []
  const looksPerTick: number[] = []
  drive(heartbeat, all, clock, clock.now + 4 * interval, perTick, looksPerTick)
  const total = perTick.reduce((a, b) => a + b, 0)
  // Each connection is looked at twice per interval at its phase and once after each ping:
  // three looks per interval, spread like the pings (no tick looks at all of them).
  const mostLooks = Math.max(...looksPerTick)
  t.ok(mostLooks <= 6 * all.length / Math.floor(interval / heartbeat.tick), `at most twice the even share of looks in any tick (${mostLooks})`)
  // The half interval is cut into slots; an even spread puts N / slots in each.
  const slots = Math.floor(interval / 2 / heartbeat.tick)
  const even = all.length / slots
  const most = Math.max(...perTick)
  t.ok(most <= 2 * even, `at most twice the even share in any tick (${most} against ${even.toFixed(0)} of ${total})`)
  // Every peer answers: each is pinged about once per interval, not twice.
  for (const peer of all.slice(0, 200)) {
    t.ok(peer.pings.length >= 3 && peer.pings.length <= 4, `pinged once per interval (${peer.pings.length} in 4)`)
    for (let i = 1; i < peer.pings.length; i++) {
      const gap = peer.pings[i] - peer.pings[i - 1]
      if (gap < interval - heartbeat.tick || gap > interval + heartbeat.tick) t.fail(`pings ${gap} ms apart`)
    }
    if (peer.terminatedAt >= 0) t.fail('a live peer was terminated')
  }
  // The spread persists: the last interval is as even as the first.
  const lastInterval = perTick.slice(-Math.floor(interval / heartbeat.tick))
  t.ok(Math.max(...lastInterval) <= 2 * even, 'still spread three intervals later')
})

t.test('a dead peer is terminated after interval + timeout of silence, within two ticks more', async (t) => {
  for (const [interval, timeout] of [[25_000, 10_000], [200, 100], [1000, 5000], [40, 1]]) {
    const heartbeat = new Heartbeat({ interval, timeout })
    const clock = { now: 5_000_000 }
    const dead = peers(300, clock.now, -1)
    const live = peers(300, clock.now)
    const all = [...dead, ...live]
    for (const peer of all) heartbeat.add(asConnection(peer, clock), clock.now)
    // Some dead peers showed life a while after arriving, at odd times.
    drive(heartbeat, all, clock, clock.now + 3 * heartbeat.tick)
    for (const peer of dead.slice(0, 100)) peer.lastSeen = clock.now - 1
    drive(heartbeat, all, clock, clock.now + 3 * (interval + timeout))
    let worst = 0
    for (const peer of dead) {
      const silent = peer.terminatedAt - peer.lastSeen
      if (peer.terminatedAt < 0 || silent < interval + timeout || silent > interval + timeout + 2 * heartbeat.tick) {
        t.fail(`terminated after ${silent} ms of silence (interval ${interval}, timeout ${timeout}, tick ${heartbeat.tick})`)
        break
      }
      worst = Math.max(worst, silent)
    }
    t.ok(worst >= interval + timeout, `dead peers found within interval + timeout + 2 ticks (${interval}/${timeout}: worst ${worst} ms, tick ${heartbeat.tick})`)
    t.ok(live.every((peer) => peer.terminatedAt < 0), 'live peers stay')
    t.equal(heartbeat.size, live.length, 'the terminated are no longer watched')
  }
})

t.test('a connection with traffic is not pinged; removing stops watching; a long stall catches up', async (t) => {
  const interval = 1000
  const heartbeat = new Heartbeat({ interval, timeout: 500 })
  const clock = { now: 10_000 }
  const [busy, quiet] = peers(2, clock.now)
  heartbeat.add(asConnection(busy, clock), clock.now)
  const quietConnection = asConnection(quiet, clock)
  heartbeat.add(quietConnection, clock.now)
  heartbeat.add(quietConnection, clock.now)
  t.equal(heartbeat.size, 2, 'added once')
  while (clock.now < 20_000) {
    busy.lastSeen = clock.now
    drive(heartbeat, [busy, quiet], clock, clock.now + 100)
  }
  t.equal(busy.pings.length, 0, 'a peer that keeps talking is never pinged')
  t.ok(quiet.pings.length >= 8, `a quiet one is (${quiet.pings.length})`)
  heartbeat.remove(quietConnection)
  heartbeat.remove(quietConnection)
  t.equal(heartbeat.size, 1)
  const pings = quiet.pings.length
  drive(heartbeat, [busy], clock, clock.now + 5000)
  t.equal(quiet.pings.length, pings, 'a removed connection is not visited')
  // The loop stalled for a minute: the peer is pinged and still given `timeout` to answer.
  busy.answerAfter = -1
  const before = busy.pings.length
  clock.now += 60_000
  heartbeat.run(clock.now)
  t.equal(busy.terminatedAt, -1, 'not terminated on the first run after the stall')
  drive(heartbeat, [busy], clock, clock.now + 3 * 1500)
  t.equal(busy.pings.length - before, 1, 'pinged once after the stall')
  t.ok(busy.terminatedAt - busy.pings[before] >= 500, 'then terminated, timeout after its ping')
  t.equal(heartbeat.size, 0)
})

t.test('after a stall of the loop the wheel catches up a few slots per tick: no burst of pings', async (t) => {
  const interval = 25_000
  const heartbeat = new Heartbeat({ interval, timeout: 10_000 })
  const clock = { now: Date.now() }
  const all = peers(5000, clock.now)
  for (const peer of all) heartbeat.add(asConnection(peer, clock), clock.now)
  drive(heartbeat, all, clock, clock.now + 2 * interval)
  clock.now += 20_000
  const perTick: number[] = []
  drive(heartbeat, all, clock, clock.now + 2 * interval, perTick)
  const even = all.length / Math.floor(interval / 2 / heartbeat.tick)
  const most = Math.max(...perTick)
  t.ok(most <= 4 * 2 * even, `at most the even share of the slots one run catches up (${most} against ${even.toFixed(0)})`)
  t.ok(all.every((peer) => peer.terminatedAt < 0), 'every peer answers and stays')
})

t.test('over real sockets: pings keep coming to an idle connection; none of the timers outlives close', async (t) => {
  const { app, url } = await build(t, { heartbeat: { interval: 120, timeout: 200 } })
  const c = await connect(t, url)
  let pings = 0
  c.ws.on('ping', () => { pings++ })
  await until(() => pings >= 3, 10_000)
  t.ok(pings >= 3, 'an idle connection answering pings is pinged again and again')
  t.equal(c.ws.readyState, WebSocket.OPEN)
  c.ws.close()
  await until(() => app.realtime.connections.size === 0)
  const heartbeat = (app.realtime as unknown as { heartbeatTick: number }).heartbeatTick
  t.ok(heartbeat >= 1)
})
