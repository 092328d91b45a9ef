// Property tests: random interleavings of subscribes (with and without `since`, with
// and without a filter), subscriptions the server makes,
// publications from the server, from clients and from handlers, slow and paused
// readers, a volatile topic, unsubscribes from both sides, kicks, disconnects and
// reconnects, rate-limit closes, handlers that throw or hang, and shutdowns, run
// against a real server over real sockets on the memory broker, with fan-outs whole
// and sliced over event-loop turns. After each sequence
// the client-visible history is checked against the protocol model
// (fixtures/protocol-model.ts); a failure names the guarantee that broke.
//
// Environment: PROPERTY_SEED (and PROPERTY_PATH) replay a failure, as its message says;
// PROPERTY_RUNS sets the sequences per suite (default 60 here; Redis: 50 and 25).
import t from 'tap'
import { commandsOf, holds, runs } from '../fixtures/protocol-commands.js'
import { Server, World } from '../fixtures/protocol-driver.js'
import { deltaForms } from '../fixtures/protocol-client.js'

const server = new Server()
t.teardown(() => server.stop())
const world = (): World => new World(server)
// Every fan-out to two subscribers or more walked one subscriber per event-loop turn
// (fanOutSlice 1), while publications, subscribes, recoveries and closes race it.
const sliced = new Server(undefined, { fanOutSlice: 1 })
t.teardown(() => sliced.stop())

t.test('memory broker: the delivery contract under random interleavings', async (t) => {
  await holds(t, 'every subscriber gapless or told, every request answered once, hooks paired', commandsOf({}), runs(60), world)
})

t.test('memory broker, fan-outs sliced one subscriber per turn: the same contract', async (t) => {
  await holds(t, 'sliced fan-outs: every subscriber gapless or told, in order, every request answered once', commandsOf({
    serverPublish: 6, publish: 4, subscribe: 6, unsubscribe: 3, serverUnsubscribe: 2
  }), runs(60), () => new World(sliced))
})

t.test('memory broker: volatile topics never cause a close, recovery with a small queue included', async (t) => {
  await holds(t, 'volatile topics never cause a close', commandsOf({
    subscribe: 6, serverPublish: 6, publish: 2, act: 0, burst: 0, restart: 0, kick: 0, retry: 0, disconnect: 2, unsubscribe: 3
  }, 14, 4), runs(60), world)
})

t.test('memory broker: idempotent keys across errors, close codes and shutdowns', async (t) => {
  await holds(t, 'an idempotent key runs once and answers its own outcome; close codes honoured', commandsOf({
    act: 8, retry: 5, restart: 2, release: 1, subscribe: 1, serverPublish: 1, publish: 0, burst: 0, pause: 0, resume: 0, kick: 0
  }), runs(60), world)
})

t.test('memory broker: requests accepted before a close are answered', async (t) => {
  await holds(t, 'every accepted request answered before its connection closes', commandsOf({
    burst: 4, act: 2, kick: 1, subscribe: 1, serverPublish: 1, restart: 0, retry: 0
  }), runs(60), world)
})

t.test('memory broker: filtered subscriptions and the server\'s, recovered after gaps and reconnections', async (t) => {
  await holds(t, 'a filtered subscriber gets exactly what matches, in order, and recovers gaplessly', commandsOf({
    subscribe: 8, serverSubscribe: 3, serverPublish: 6, publish: 3, unsubscribe: 2, disconnect: 2, connect: 3, act: 1, burst: 0, retry: 0, restart: 1
  }, 16), runs(60), world)
})

// Filters pick a publication's recipients when it is published; a sliced walk reaches them
// over several turns while subscribes, recoveries and other publications race it.
t.test('memory broker: filtered subscriptions with fan-outs sliced one subscriber per turn', async (t) => {
  await holds(t, 'sliced filtered fan-outs: exactly what matches, in order, gapless', commandsOf({
    subscribe: 8, serverSubscribe: 3, serverPublish: 6, publish: 3, unsubscribe: 2, disconnect: 2, connect: 3, act: 1, burst: 0, retry: 0, restart: 1
  }, 16), runs(60), () => new World(sliced))
})

t.test('the sequences exercised delta compression', async (t) => {
  t.comment(`delta subscribers rebuilt ${deltaForms.whole} whole publications and ${deltaForms.deltas} deltas`)
  t.ok(deltaForms.deltas > 0 && deltaForms.whole > 0)
})
