// The YAML form of AsyncAPI documents (lib/asyncapi/yaml.ts) is our own writer: whatever JSON
// data it is given, a YAML reader (the `yaml` package, a dev dependency only) must read back
// exactly that data, and the chat example's document must stay valid for @asyncapi/parser.
import t from 'tap'
import fc from 'fast-check'
import { parse } from 'yaml'
import { toYaml } from '../../lib/asyncapi/yaml.js'
import { buildChat } from '../../examples/chat/app.js'
import { problems } from '../fixtures/asyncapi.js'

t.test('any JSON value reads back the same', async (t) => {
  fc.assert(fc.property(fc.jsonValue(), (value) => {
    const expected = JSON.parse(JSON.stringify(value)) as unknown
    t.same(parse(toYaml(value)), expected)
  }), { numRuns: 2000 })
})

t.test('strings a reader could take for something else are quoted', async (t) => {
  const tricky = ['true', 'No', 'null', '~', '', ' x', 'x ', '1', '0x1F', '1e3', '.inf', '-', '- x', 'a: b', 'a #b', '#', '&a', '*a', '!t', '|', '>', '@', '`', '%', '{}', '[x]', "'q'", '"q"', 'line\nbreak', 'tab\t', '2026-12-08', '1:20', '<<', '?']
  const doc = Object.fromEntries(tricky.map((s, i) => [s, [s, { [s]: i }]]))
  t.same(parse(toYaml(doc)), doc)
  t.equal(toYaml({ channel: 'chat/room' }), 'channel: chat/room\n', 'plain where it is safe')
})

t.test('nested sequences and mappings, empty ones, and toJSON', async (t) => {
  const value = { a: [[1, [2]], [], {}, [{ b: { c: [] } }]], d: { toJSON: () => 'e' }, f: undefined }
  t.same(parse(toYaml(value)), { a: [[1, [2]], [], {}, [{ b: { c: [] } }]], d: 'e' })
  t.equal(toYaml('plain'), 'plain\n')
  t.throws(() => toYaml(undefined), TypeError)
})

t.test('the chat example\'s document in YAML is valid AsyncAPI and the same document', async (t) => {
  const app = await buildChat({ logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const document = app.realtime.asyncapi()
  const yaml = toYaml(document)
  t.same(parse(yaml), JSON.parse(JSON.stringify(document)))
  t.same(await problems(yaml), [], '@asyncapi/parser finds no problem')
})
