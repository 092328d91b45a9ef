import t from 'tap'
import { MemoryBroker } from '../lib/index.js'
import { brokerContract } from './fixtures/broker-contract.js'

brokerContract(t, {
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
