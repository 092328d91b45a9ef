import t from 'tap'
import { shouldReconnect, closeReason, CloseCode } from '../../lib/protocol/constants.js'

t.test('which close codes a client reconnects on', async (t) => {
  for (const code of [1001, 1006, 1012, 1013, 4000, 4004, 4005, 4008, 4010, 4011, 4012, 4013, 4499]) t.equal(shouldReconnect(code), true, `${code} reconnects`)
  for (const code of [1000, 1002, 1007, 1008, 1009, 1011, 3000, 4500, 4501, 4502, 4503, 4504, 4505, 4506, 4507, 4999]) t.equal(shouldReconnect(code), false, `${code} stays closed`)
  t.equal(CloseCode.SLOW_CONSUMER, 4008)
})

t.test('close reasons are cut to 123 bytes on a character boundary', async (t) => {
  t.equal(closeReason('short'), 'short')
  const cut = closeReason('é'.repeat(100))
  t.ok(Buffer.byteLength(cut) <= 123)
  t.equal(cut, 'é'.repeat(61))
  t.equal(closeReason('x'.repeat(200)).length, 123)
})
