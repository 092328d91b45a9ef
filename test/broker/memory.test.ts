import t from 'tap'
import { MemoryBroker } from '../../lib/index.js'
import { brokerContract, idempotencyContract } from '../fixtures/broker-contract.js'

brokerContract(t, {
  prefix: '',
  make: async (clock) => new MemoryBroker({ now: clock.now })
})

idempotencyContract(t, {
  prefix: '',
  make: async (clock) => new MemoryBroker({ now: clock.now })
})

t.test('a closed memory broker forgets its streams', async (t) => {
  const broker = new MemoryBroker()
  const { epoch } = await broker.position('a')
  await broker.publish('a', '{}')
  broker.close()
  const after = await broker.position('a')
  t.equal(after.offset, 0)
  t.not(after.epoch, epoch, 'a new epoch: continuity is lost')
})

t.test('topics never published to share the broker epoch and cost nothing; recovery from their empty position works', async (t) => {
  const broker = new MemoryBroker()
  broker.start(() => {})
  const empty = await broker.position('never/1')
  t.same(await broker.position('never/2'), empty, 'one epoch for every empty topic of this broker')
  t.same((await broker.history('never/3', 10)).publications, [])
  await broker.publish('never/1', '{"n":1}', { history: { size: 10, ttl: 0 } })
  const r = await broker.recover('never/1', empty, 100)
  t.equal(r.recovered, true, 'a client that saw the empty topic recovers its first publication')
  t.same(r.publications.map((p) => p.offset), [1])
  await broker.publish('never/4', '{}', { ephemeral: true })
  t.same(await broker.position('never/4'), empty, 'an ephemeral publication creates no stream')
})
