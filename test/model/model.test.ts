// The protocol model itself (fixtures/protocol-model.ts), fed hand-written histories:
// each guarantee holds on a history that keeps it and is reported, by name, on one
// that breaks it. A model that accepted everything would make the property tests
// worthless; these catch that.
import t from 'tap'
import { Guarantee, ProtocolModel, type ModelEvent, type WireFrame } from '../fixtures/protocol-model.js'

const E = 'epochA'
const F = 'epochB'

function model (): ProtocolModel {
  return new ProtocolModel({ volatile: (topic) => topic.startsWith('tick/'), publishes: (f) => f.data?.mode === 'publish' })
}

/** Runs events through a fresh model; returns what finish() reports. */
function run (events: ModelEvent[]): string[] {
  const m = model()
  for (const e of events) m.event(e)
  return m.finish()
}

const open = (conn = 'c', serverId = 's'): ModelEvent[] => [
  { kind: 'hook', hook: 'connect', serverId },
  { kind: 'open', conn, serverId }
]
/** The client sees the close; the server ends the subscriptions (onUnsubscribe), then onDisconnect. */
const closeAll = (conn = 'c', serverId = 's', code = 1005, byClient = true, topics: string[] = []): ModelEvent[] => [
  { kind: 'close', conn, code, byClient },
  ...topics.map((topic): ModelEvent => ({ kind: 'hook', hook: 'unsubscribe', serverId, topic, reason: 'disconnect' })),
  { kind: 'hook', hook: 'disconnect', serverId }
]
const send = (frame: WireFrame, conn = 'c'): ModelEvent => ({ kind: 'send', conn, frame })
const recv = (frame: WireFrame, conn = 'c'): ModelEvent => ({ kind: 'recv', conn, frame })
const msg = (topic: string, offset: number, epoch = E, n = offset): ModelEvent => recv({ type: 'message', topic, offset, epoch, data: { n } })
const subscribed = (topic: string, id: number, reply: { offset: number, epoch?: string, recovered?: boolean }, since?: { offset: number, epoch: string }): ModelEvent[] => [
  send({ type: 'subscribe', id, data: since === undefined ? { topic } : { topic, since } }),
  { kind: 'hook', hook: 'subscribe', serverId: 's', topic },
  recv({ type: 'reply', id, data: { topic, offset: reply.offset, epoch: reply.epoch ?? E, ...(reply.recovered === undefined ? {} : { recovered: reply.recovered }) } })
]
const ended = (topic: string): ModelEvent => ({ kind: 'hook', hook: 'unsubscribe', serverId: 's', topic, reason: 'disconnect' })

/** The names of the guarantees a list of violations breaks. */
const broken = (violations: string[]): string[] => [...new Set(violations.map((v) => v.slice(0, v.indexOf(' -- '))))]

t.test('a clean history keeps every guarantee', async (t) => {
  t.same(run([
    ...open(),
    ...subscribed('feed/a', 1, { offset: 2 }),
    { kind: 'published', topic: 'feed/a', epoch: E, offset: 3, data: { n: 3 } },
    msg('feed/a', 3), msg('feed/a', 4),
    send({ type: 'act', id: 2, data: { mode: 'ok' } }),
    { kind: 'run', serverId: 's', id: 2 },
    { kind: 'ran', serverId: 's', id: 2, outcome: { kind: 'reply', value: { n: 1 } } },
    recv({ type: 'reply', id: 2, data: { n: 1 } }),
    { kind: 'settled' },
    ...closeAll('c', 's', 1005, true, ['feed/a'])
  ]), [])
})

t.test('ordered delivery: a gap, a duplicate, an untold epoch change', async (t) => {
  const base = [...open(), ...subscribed('feed/a', 1, { offset: 0 }), msg('feed/a', 1)]
  t.same(broken(run([...base, msg('feed/a', 3), ...closeAll('c', 's', 1005, true, ['feed/a'])])), [Guarantee.order], 'gap')
  t.same(broken(run([...base, msg('feed/a', 1), ...closeAll('c', 's', 1005, true, ['feed/a'])])), [Guarantee.order], 'duplicate')
  t.same(broken(run([...base, msg('feed/a', 2, F), ...closeAll('c', 's', 1005, true, ['feed/a'])])), [Guarantee.order], 'another epoch without being told')
  t.same(broken(run([...base, recv({ type: 'unsubscribed', topic: 'feed/a', code: 2500 }), msg('feed/a', 5), ...closeAll('c', 's', 1005, true, ['feed/a'])])), [Guarantee.order], 'a message after the 2500')
})

t.test('ordered delivery: a gap told is not a violation', async (t) => {
  t.same(run([
    ...open(), ...subscribed('feed/a', 1, { offset: 0 }), msg('feed/a', 1),
    recv({ type: 'unsubscribed', topic: 'feed/a', code: 2500 }), ended('feed/a'),
    ...subscribed('feed/a', 2, { offset: 7, recovered: false }, { offset: 1, epoch: E }), msg('feed/a', 8),
    ...closeAll('c', 's', 1005, true, ['feed/a'])
  ]), [], '2500, then recovered: false from a later position')
  t.same(run([
    ...open(), ...subscribed('feed/a', 1, { offset: 3, epoch: F, recovered: true }, { offset: 3, epoch: E }),
    msg('feed/a', 4, F), msg('feed/a', 5, F),
    ...closeAll('c', 's', 1005, true, ['feed/a'])
  ]), [], 'a recovered reply naming a forked epoch: the replay goes on in it')
  t.same(broken(run([
    ...open(), ...subscribed('feed/a', 1, { offset: 9, recovered: true }, { offset: 3, epoch: E }),
    msg('feed/a', 10), ...closeAll('c', 's', 1005, true, ['feed/a'])
  ])), [Guarantee.order], 'recovered: the replay starts right after since, not at the head')
})

t.test('a volatile topic may skip ahead, never back', async (t) => {
  const base = [...open(), ...subscribed('tick/a', 1, { offset: 0 }), msg('tick/a', 1), msg('tick/a', 4)]
  t.same(run([...base, ...closeAll('c', 's', 1005, true, ['tick/a'])]), [])
  t.same(broken(run([...base, msg('tick/a', 2), ...closeAll('c', 's', 1005, true, ['tick/a'])])), [Guarantee.order])
})

t.test('a subscribe reply precedes the publications it announces', async (t) => {
  t.same(broken(run([
    ...open(), send({ type: 'subscribe', id: 1, data: { topic: 'feed/a' } }), { kind: 'hook', hook: 'subscribe', serverId: 's', topic: 'feed/a' }, msg('feed/a', 1),
    recv({ type: 'reply', id: 1, data: { topic: 'feed/a', offset: 1, epoch: E } }), ...closeAll('c', 's', 1005, true, ['feed/a'])
  ])), [Guarantee.replyFirst])
})

t.test('a message carries what was published at its offset', async (t) => {
  t.same(broken(run([
    ...open(), ...subscribed('feed/a', 1, { offset: 0 }),
    { kind: 'published', topic: 'feed/a', epoch: E, offset: 1, data: { n: 1 } },
    msg('feed/a', 1, E, 99), ...closeAll('c', 's', 1005, true, ['feed/a'])
  ])), [Guarantee.content])
})

t.test('a live subscription gets every publication of its epoch', async (t) => {
  t.same(broken(run([
    ...open(), ...subscribed('feed/a', 1, { offset: 0 }),
    { kind: 'published', topic: 'feed/a', epoch: E, offset: 1, data: { n: 1 } },
    { kind: 'published', topic: 'feed/a', epoch: E, offset: 2, data: { n: 2 } },
    msg('feed/a', 1)
  ])), [Guarantee.tail, Guarantee.connectPair, Guarantee.unsubscribePair], 'and its connection never ended')
})

t.test('volatile topics never cause a close', async (t) => {
  const volatileOnly = [...open(), ...subscribed('tick/a', 1, { offset: 0 })]
  t.same(broken(run([...volatileOnly, ...closeAll('c', 's', 4008, false, ['tick/a'])])), [Guarantee.volatile])
  t.same(run([...open(), ...subscribed('feed/a', 1, { offset: 0 }), ...closeAll('c', 's', 4008, false, ['feed/a'])]), [], 'a 4008 for a stream topic is the rule')
})

t.test('requests: one answer, and an answer when the handler finished before the close', async (t) => {
  const req = [...open(), send({ type: 'act', id: 1, data: { mode: 'ok' } }), { kind: 'run', serverId: 's', id: 1 } as ModelEvent]
  const ran: ModelEvent = { kind: 'ran', serverId: 's', id: 1, outcome: { kind: 'reply', value: { n: 1 } } }
  const reply = recv({ type: 'reply', id: 1, data: { n: 1 } })
  t.same(broken(run([...req, ran, reply, reply, ...closeAll()])), [Guarantee.oneAnswer], 'two answers')
  t.same(broken(run([...req, ran, ...closeAll('c', 's', 4013, false)])), [Guarantee.answered], 'finished, then closed 4013 without its answer')
  t.same(run([...req, ...closeAll('c', 's', 4503, false), ran]), [], 'finished after the server let the connection go: nothing owed')
  t.same(run([...req, ran, ...closeAll('c', 's', 4008, false)]), [], 'a full queue cannot carry the answer')
  t.same(broken(run([...req, { kind: 'settled' }, ...closeAll()])), [Guarantee.answered], 'no answer while the connection stayed open')
})

t.test('a handler error with a closeCode closes the connection with it', async (t) => {
  const req: ModelEvent[] = [
    ...open(), send({ type: 'act', id: 1, key: 'k', data: { mode: 'close', k: 'k' } }), { kind: 'run', serverId: 's', id: 1, key: 'k' },
    { kind: 'ran', serverId: 's', id: 1, key: 'k', outcome: { kind: 'error', code: 'FORBIDDEN', closeCode: 4504 } },
    recv({ type: 'error', id: 1, error: { code: 'FORBIDDEN' } })
  ]
  t.same(run([...req, ...closeAll('c', 's', 4504, false)]), [])
  t.same(broken(run([...req, { kind: 'settled' }, ...closeAll()])), [Guarantee.closeCode])
})

t.test('idempotent keys: one run, and only its own answer remembered', async (t) => {
  const first: ModelEvent[] = [
    ...open(), send({ type: 'act', id: 1, key: 'k', data: { k: 'k' } }), { kind: 'run', serverId: 's', id: 1, key: 'k' }
  ]
  const repeat: ModelEvent[] = [...open('c2', 's2'), send({ type: 'act', id: 1, key: 'k', data: { k: 'k' } }, 'c2')]
  const own: ModelEvent = { kind: 'ran', serverId: 's', id: 1, key: 'k', outcome: { kind: 'reply', value: { n: 1 } } }
  t.same(run([...first, own, ...closeAll(), ...repeat, recv({ type: 'reply', id: 1, data: { n: 1 } }, 'c2'), ...closeAll('c2', 's2')]), [], 'the repeat gets the first answer')
  t.same(broken(run([...first, own, ...closeAll(), ...repeat, recv({ type: 'reply', id: 1, data: { n: 2 } }, 'c2'), ...closeAll('c2', 's2')])), [Guarantee.idemOwn], 'another answer')
  t.same(broken(run([...first, own, ...closeAll(), ...repeat, { kind: 'run', serverId: 's2', id: 1, key: 'k' }, { ...own, serverId: 's2' }, recv({ type: 'reply', id: 1, data: { n: 1 } }, 'c2'), ...closeAll('c2', 's2')])), [Guarantee.idemOnce], 'run twice')
  const pluginFailure: ModelEvent = { kind: 'ran', serverId: 's', id: 1, key: 'k', outcome: { kind: 'plugin', code: 'FST_REALTIME_CLOSED' } }
  t.same(broken(run([...first, ...closeAll('c', 's', 1012, false), pluginFailure, ...repeat, recv({ type: 'error', id: 1, error: { code: 'INTERNAL' } }, 'c2'), ...closeAll('c2', 's2')])), [Guarantee.idemOwn], 'a failure of the plugin\'s making remembered')
  t.same(run([...first, ...closeAll('c', 's', 1012, false), pluginFailure, ...repeat, { kind: 'run', serverId: 's2', id: 1, key: 'k' }, { ...own, serverId: 's2' }, recv({ type: 'reply', id: 1, data: { n: 1 } }, 'c2'), ...closeAll('c2', 's2')]), [], 'after a plugin failure the key runs again')
})

t.test('a publish answered as a success is in the stream', async (t) => {
  const req = [...open(), send({ type: 'act', id: 1, data: { mode: 'publish' } })]
  t.same(broken(run([...req, recv({ type: 'reply', id: 1, data: { n: 1, offset: 0, epoch: E } }), ...closeAll()])), [Guarantee.inStream])
  t.same(run([...req, recv({ type: 'error', id: 1, error: { code: 'UNAVAILABLE' } }), ...closeAll()]), [])
})

t.test('hooks: one onDisconnect per onConnect, one onUnsubscribe per confirmed subscription', async (t) => {
  t.same(broken(run([...open(), ...subscribed('feed/a', 1, { offset: 0 }), ...closeAll()])), [Guarantee.unsubscribePair], 'no onUnsubscribe')
  t.same(broken(run([...open(), ...subscribed('feed/a', 1, { offset: 0 }), ended('feed/a'), ended('feed/a'), ...closeAll()])), [Guarantee.unsubscribePair], 'two')
  t.same(broken(run([...open(), ...closeAll(), { kind: 'hook', hook: 'disconnect', serverId: 's' }])), [Guarantee.connectPair], 'two onDisconnect')
  t.same(broken(run([...open(), ...subscribed('feed/a', 1, { offset: 0 }), ...closeAll(), ended('feed/a')])), [Guarantee.unsubscribePair], 'onUnsubscribe after onDisconnect')
})

t.test('a rolled back publication is never delivered, whether it arrives after the rollback is known or before', async (t) => {
  const history = (order: 'after' | 'before'): ModelEvent[] => {
    const rolledBack: ModelEvent = { kind: 'rolledBack', topic: 'feed/a', data: { n: 3 } }
    return [
      ...open(),
      ...subscribed('feed/a', 1, { offset: 2 }),
      ...(order === 'after' ? [rolledBack, msg('feed/a', 3)] : [msg('feed/a', 3), rolledBack]),
      { kind: 'settled' },
      ...closeAll('c', 's', 1005, true, ['feed/a'])
    ]
  }
  t.same(broken(run(history('after'))), [Guarantee.rolledBack])
  t.same(broken(run(history('before'))), [Guarantee.rolledBack])
  t.same(run([
    ...open(),
    ...subscribed('feed/a', 1, { offset: 2 }),
    { kind: 'rolledBack', topic: 'feed/a', data: { n: 99 } },
    { kind: 'published', topic: 'feed/a', epoch: E, offset: 3, data: { n: 3 } },
    msg('feed/a', 3),
    { kind: 'settled' },
    ...closeAll('c', 's', 1005, true, ['feed/a'])
  ]), [], 'a committed one after a rolled back one, at the offset the rollback gave back')
})
