// lib/wire/envelope.ts: what the server refuses at the door, whichever field of the frame
// holds it (README, Security: numbers no double holds and nesting deeper than maxDepth).
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { build, connect } from '../fixtures/helpers.js'

t.test('a non-finite number or nesting past maxDepth is BAD_REQUEST in any field, not only data', async (t) => {
  let runs = 0
  const { url } = await build(t, { maxDepth: 4 }, (app) => {
    app.realtime.route({ type: 'echo', schema: { data: Type.Any(), reply: Type.Any() }, handler: (d) => { runs++; return d } })
  })
  const c = await connect(t, url)
  const refused = [
    ['inf-extra', '{"type":"echo","id":"inf-extra","data":1,"extra":1e999}', /finite/],
    ['neg-inf-extra', '{"type":"echo","id":"neg-inf-extra","data":1,"x":{"y":-1e999}}', /finite/],
    ['inf-ping', '{"type":"ping","id":"inf-ping","n":1E400}', /finite/],
    // Objects and arrays count: the envelope is level 1, then extra, a, b and c's object make 5.
    ['deep-extra', '{"type":"echo","id":"deep-extra","data":1,"extra":{"a":{"b":{"c":{"d":1}}}}}', /nest at most 4/],
    ['deep-ping', '{"type":"ping","id":"deep-ping","x":[[[[1]]]]}', /nest at most 4/]
  ] as const
  for (const [id, frame, message] of refused) {
    c.send(frame)
    const answer = await c.next((f) => f.id === id)
    t.match(answer, { type: 'error', error: { code: 'BAD_REQUEST', message } }, id)
  }
  t.equal(runs, 0, 'no handler ran')
  // At the limit, outside data as inside, a frame passes.
  c.send('{"type":"echo","id":"fine","data":1,"extra":{"a":{"b":{"c":1.5e300}}}}')
  t.match(await c.next((f) => f.id === 'fine'), { type: 'reply', data: 1 })
  t.equal(runs, 1)
})
