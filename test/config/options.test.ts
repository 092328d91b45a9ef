// Configuration mistakes fail at register, by name: a misspelt option, a broker that
// is not one.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import realtime, { MemoryBroker } from '../../lib/index.js'

async function registerFails (t: Test, options: Record<string, unknown>, message: RegExp): Promise<void> {
  const app = Fastify()
  await t.rejects(async () => { await app.register(realtime, options as never).ready() }, { code: 'FST_REALTIME_INVALID_OPTION', message }, JSON.stringify(Object.keys(options)))
  await app.close()
}

t.test('an unknown option fails register, naming it and guessing what was meant', async (t) => {
  await registerFails(t, { pth: '/x' }, /Invalid fastify-realtime option "pth": unknown option; did you mean "path"\?/)
  await registerFails(t, { heartbeat: { intreval: 1000 } }, /"heartbeat\.intreval": unknown option; did you mean "heartbeat\.interval"\?/)
  await registerFails(t, { rateLimit: { rate: 10, bursts: 5 } }, /"rateLimit\.bursts"/)
  await registerFails(t, { authentificate: () => null }, /"authentificate": unknown option/)
  await registerFails(t, { somethingElse: true }, /"somethingElse": unknown option$/)
})

t.test('a broker without the broker methods fails register with a clear message', async (t) => {
  await registerFails(t, { broker: { publish: async () => ({ offset: 1, epoch: 'e' }) } }, /"broker": is not a broker: it lacks start, command, position, recover, history, join, leave, members, subscribe, unsubscribe, close/)
  const app = Fastify()
  await app.register(realtime, { broker: new MemoryBroker(), heartbeat: { interval: 1000 }, closeCode: 1001 })
  await app.ready()
  t.equal(app.realtime.options.closeCode, 1001, 'every known option is accepted')
  await app.close()
})
