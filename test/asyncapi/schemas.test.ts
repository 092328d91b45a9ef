// TypeBox schemas as they go into an AsyncAPI document: JSON Schema only, words kept,
// shared schemas written once under components and referenced; and the examples
// built from schemas.
import t from 'tap'
import { Type, type TSchema } from '@sinclair/typebox'
import { SchemaComponents, pascal } from '../../lib/asyncapi/schemas.js'
import { example } from '../../lib/asyncapi/example.js'
import { buildAsyncApi } from '../../lib/asyncapi/document.js'
import type { ApiDescription } from '../../lib/asyncapi/description.js'
import { problems } from '../fixtures/asyncapi.js'

function written (schemas: TSchema[], hint = 'root'): { out: unknown[], components: Record<string, unknown> } {
  const c = new SchemaComponents()
  for (const s of schemas) c.collect(s)
  const out = schemas.map((s) => c.write(s, hint))
  return { out, components: c.components }
}

t.test('TypeBox marks are dropped; words, $id and examples are kept', async (t) => {
  const schema = Type.Object({
    name: Type.Optional(Type.Readonly(Type.String({ description: 'Display name', examples: ['Ann'], default: 'anon' }))),
    tags: Type.Array(Type.String(), { maxItems: 3 }),
    pair: Type.Tuple([Type.String(), Type.Integer()])
  }, { additionalProperties: false, title: 'Person' })
  const { out, components } = written([schema])
  t.same(out[0], {
    title: 'Person',
    additionalProperties: false,
    type: 'object',
    properties: {
      name: { description: 'Display name', examples: ['Ann'], default: 'anon', type: 'string' },
      tags: { maxItems: 3, type: 'array', items: { type: 'string' } },
      pair: { type: 'array', items: [{ type: 'string' }, { type: 'integer' }], additionalItems: false, minItems: 2, maxItems: 2 }
    },
    required: ['tags', 'pair']
  })
  t.same(components, {}, 'nothing shared, nothing in components')
  t.equal(Object.getOwnPropertySymbols((out[0] as any).properties.name).length, 0, 'no symbol left')
})

t.test('kinds JSON cannot carry are reduced to their words', async (t) => {
  const { out } = written([Type.Object({
    at: Type.Date({ description: 'When', title: 'Instant', minimumTimestamp: 0 }),
    blob: Type.Uint8Array({ maxByteLength: 10 }),
    fn: Type.Function([], Type.Void())
  })])
  t.same((out[0] as any).properties, { at: { title: 'Instant', description: 'When' }, blob: {}, fn: {} })
})

t.test('a schema used twice is written once, named after where it was declared', async (t) => {
  const point = Type.Object({ x: Type.Number(), y: Type.Number() })
  const line = Type.Object({ from: point, to: point })
  const c = new SchemaComponents()
  c.collect(line)
  c.hint(point, 'chat.send point')
  c.hint(point, 'ignored: the first hint wins')
  t.same(c.write(line, 'line'), { type: 'object', properties: { from: { $ref: '#/components/schemas/ChatSendPoint' }, to: { $ref: '#/components/schemas/ChatSendPoint' } }, required: ['from', 'to'] })
  t.same(Object.keys(c.components), ['ChatSendPoint'])
})

t.test('one $id is one component, even through TypeBox copies (Optional) and Type.Ref', async (t) => {
  const money = Type.Object({ amount: Type.Integer() }, { $id: 'Money' })
  const order = Type.Object({ total: money, tip: Type.Optional(money), refund: Type.Ref('Money') })
  const { out, components } = written([order])
  const ref = { $ref: '#/components/schemas/Money' }
  t.same((out[0] as any).properties, { total: ref, tip: ref, refund: ref })
  t.same(components, { Money: { $id: 'Money', type: 'object', properties: { amount: { type: 'integer' } }, required: ['amount'] } })
})

t.test('recursive schemas end in a reference to themselves, and the document is valid', async (t) => {
  const tree = Type.Recursive((self) => Type.Object({ label: Type.String(), children: Type.Array(self) }), { $id: 'Tree' })
  const cyclic: Record<string, unknown> = { type: 'object', properties: {} }
  ;(cyclic.properties as Record<string, unknown>).next = cyclic
  const { out, components } = written([tree, cyclic as TSchema])
  t.same(out[0], { $ref: '#/components/schemas/Tree' })
  t.same((components.Tree as any).properties.children.items, { $ref: '#/components/schemas/Tree' })
  t.same(out[1], { $ref: '#/components/schemas/Root' }, 'an object that contains itself is shared, so it ends')
  t.same((components.Root as any).properties.next, { $ref: '#/components/schemas/Root' })

  const description: ApiDescription = { routes: [{ type: 'tree.get', data: Type.Object({}), reply: tree }], topics: [], events: [], auth: 'none', path: '/ws' }
  t.same(await problems(buildAsyncApi(description)), [], 'no error, no warning')
})

t.test('different schemas that would take one name get distinct names', async (t) => {
  const a = Type.Object({ a: Type.String() }, { title: 'Item' })
  const b = Type.Object({ b: Type.String() }, { title: 'Item' })
  const { components } = written([Type.Object({ x: a, y: a, z: b, w: b })])
  t.same(Object.keys(components), ['Item', 'Item2'])
  t.equal(pascal('..'), 'Schema', 'a hint with no letters still gives a name')
  t.equal(pascal('chat.send', 'NOT_IN_ROOM'), 'ChatSendNOTINROOM')
})

t.test('examples: the schema\'s own, else a placeholder of the right type', async (t) => {
  t.equal(example(Type.String({ examples: ['hi'] })), 'hi')
  t.equal(example(Type.Integer({ default: 3 })), 3)
  t.equal(example(Type.Literal('x')), 'x')
  t.equal(example(Type.Union([Type.Literal('a'), Type.Literal('b')])), 'a')
  t.equal(example({ enum: [2, 3] }), 2)
  t.equal(example(Type.String({ minLength: 9 })), 'stringxxx')
  t.equal(example(Type.String({ maxLength: 3 })), 'str')
  t.equal(example(Type.String({ format: 'date-time' })), '2026-01-01T00:00:00Z')
  for (const format of ['date', 'email', 'uri', 'uuid']) t.type(example(Type.String({ format })), 'string')
  t.equal(example(Type.Integer({ minimum: 4.5 })), 5)
  t.equal(example(Type.Number()), 1.5)
  t.equal(example(Type.Number({ minimum: 2 })), 2)
  t.equal(example(Type.Boolean()), true)
  t.equal(example(Type.Null()), null)
  t.equal(example(Type.Unknown()), null)
  t.same(example(Type.Array(Type.Integer(), { minItems: 2 })), [1, 1])
  t.same(example(Type.Object({ a: Type.String(), b: Type.Optional(Type.String()) })), { a: 'string' }, 'optional properties left out')
  t.same(example({ type: ['integer', 'null'] }), 1)
  t.equal(example('not a schema'), null)
  const deep = Type.Recursive((self) => Type.Object({ next: self }))
  t.ok(JSON.stringify(example(deep)).length < 200, 'a recursive schema ends')
})

t.test('a message example is kept only when its schema accepts it', async (t) => {
  const description: ApiDescription = {
    routes: [
      { type: 'a.ok', data: Type.Object({ n: Type.Integer({ minimum: 1 }) }) },
      { type: 'a.pattern', data: Type.String({ pattern: '^[0-9]+$' }) },
      { type: 'a.ref', data: Type.Ref('Elsewhere') }
    ],
    topics: [],
    events: [],
    auth: 'none',
    path: '/ws'
  }
  const { messages } = buildAsyncApi(description).components
  t.same(messages['a.ok'].examples, [{ name: 'example', payload: { type: 'a.ok', data: { n: 1 } } }])
  t.notOk(messages['a.pattern'].examples, '"string" does not match the pattern: no example rather than a wrong one')
  t.notOk(messages['a.ref'].examples, 'a schema that cannot be compiled alone: no example')
  t.same((messages['a.ref'].payload as any).properties.data, { $ref: 'Elsewhere' }, 'an unknown $ref is left as written')
})
