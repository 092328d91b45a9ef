// The client's side of delta compression (lib/client/delta.ts, fossil.ts): deltas rebuilt
// into whole objects, and a delta that cannot be applied never handed over: the client
// resubscribes from the last publication it handed over. A server that sends a bad delta
// cannot be made of the plugin (its rule forbids it), so a few lines of `ws` play one here.
import t from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import fossil from 'fossil-delta'
import { createClient } from '../../lib/client/index.js'
import { applyFossil, DeltaError } from '../../lib/client/fossil.js'
import { until } from '../fixtures/helpers.js'

t.test('applyFossil rebuilds what fossil-delta made, and refuses what is damaged', async (t) => {
  const a = Buffer.from(JSON.stringify({ price: 101.5, text: 'é'.repeat(40), list: [1, 2, 3, 4, 5, 6, 7, 8, 9] }))
  const b = Buffer.from(JSON.stringify({ price: 101.75, text: 'é'.repeat(39) + 'x', list: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }))
  const delta = Uint8Array.from(fossil.create(a, b))
  t.same(Buffer.from(applyFossil(a, delta)), b)
  const broken = Uint8Array.from(delta)
  broken[broken.length - 3] ^= 1
  t.throws(() => applyFossil(a, broken), DeltaError, 'a bad checksum')
  t.throws(() => applyFossil(a.subarray(0, 10), delta), DeltaError, 'another base')
  t.throws(() => applyFossil(a, delta.subarray(0, delta.length - 1)), DeltaError, 'cut short')
  t.throws(() => applyFossil(a, Buffer.from('zz')), DeltaError, 'no header')
})

t.test('a delta that does not apply: nothing wrong handed over, a resubscribe from the last position', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'realtime.v1' })
  t.teardown(() => new Promise((resolve) => wss.close(resolve)))
  await new Promise((resolve) => wss.once('listening', resolve))
  const subscribes: any[] = []
  const texts = [1, 2, 3].map((n) => JSON.stringify({ n, name: 'a quote long enough to make Fossil copy it' }))
  wss.on('connection', (ws) => {
    const send = (frame: unknown): void => ws.send(JSON.stringify(frame))
    send({ type: 'welcome', data: { connectionId: 'c1', heartbeat: { interval: 25000, timeout: 10000 } } })
    ws.on('message', (raw) => {
      const frame = JSON.parse(raw.toString())
      if (frame.type === 'unsubscribe') send({ type: 'reply', id: frame.id, data: {} })
      if (frame.type !== 'subscribe') return
      subscribes.push(frame.data)
      if (subscribes.length === 1) {
        send({ type: 'reply', id: frame.id, data: { topic: 't', offset: 0, epoch: 'E' } })
        send({ type: 'message', topic: 't', offset: 1, epoch: 'E', delta: false, data: texts[0] })
        // A delta damaged on the way: its checksum fails.
        const delta = Buffer.from(fossil.create(Buffer.from(texts[0]), Buffer.from(texts[1]))).toString('latin1')
        send({ type: 'message', topic: 't', offset: 2, epoch: 'E', delta: true, data: delta.slice(0, -3) + 'zz;' })
      } else {
        send({ type: 'reply', id: frame.id, data: { topic: 't', offset: 2, epoch: 'E', recovered: true } })
        send({ type: 'message', topic: 't', offset: 2, epoch: 'E', delta: false, data: texts[1] })
        const delta = Buffer.from(fossil.create(Buffer.from(texts[1]), Buffer.from(texts[2]))).toString('latin1')
        send({ type: 'message', topic: 't', offset: 3, epoch: 'E', delta: true, data: delta })
      }
    })
  })
  const client = createClient({ url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`, WebSocket: WebSocket as never })
  t.teardown(() => client.close())
  const seen: unknown[] = []
  client.subscribe('t', (data: unknown) => seen.push(data), { delta: true })
  await until(() => seen.length === 3)
  t.same(seen, texts.map((text) => JSON.parse(text)), 'whole objects, each once, none wrong')
  t.same(subscribes, [{ topic: 't', delta: 'fossil' }, { topic: 't', delta: 'fossil', since: { offset: 1, epoch: 'E' } }], 'resubscribed from the last one handed over')
})
