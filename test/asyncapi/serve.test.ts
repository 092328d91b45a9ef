// The `asyncapi` option: the document served as JSON and YAML (by extension or by
// Accept) and as an HTML page, naming the host it was asked from; and
// `app.realtime.asyncapi()`, which names the listening address.
import t from 'tap'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import { parse } from 'yaml'
import realtime, { type AsyncApiDocument } from '../../lib/index.js'
import { urlOf } from '../../lib/asyncapi/serve.js'
import { escapeHtml, renderPage } from '../../lib/asyncapi/page.js'
import { buildChat } from '../../examples/chat/app.js'
import realtimeDashboard from '../../lib/dashboard/index.js'

t.test('the chat example serves its document and its page', async (t) => {
  const app = await buildChat()
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const json = await fetch(`${base}/asyncapi.json`)
  t.equal(json.status, 200)
  t.match(json.headers.get('content-type'), /^application\/json/)
  const doc = await json.json() as AsyncApiDocument
  t.equal(doc.asyncapi, '3.0.0')
  t.equal(doc.servers.realtime.host, new URL(base).host, 'the host the document was asked from')
  t.same(doc, JSON.parse(JSON.stringify(app.realtime.asyncapi())), 'the same as app.realtime.asyncapi() once listening')

  for (const path of ['/asyncapi.yaml', '/asyncapi.yml']) {
    const yaml = await fetch(base + path)
    t.match(yaml.headers.get('content-type'), /^application\/yaml/, path)
    t.same(parse(await yaml.text()), doc, `${path}: the same document in YAML`)
  }
  const byAccept = async (accept: string) => fetch(`${base}/asyncapi`, { headers: { accept } })
  t.same(await (await byAccept('application/json')).json(), doc, 'Accept: application/json')
  t.same(parse(await (await byAccept('application/yaml')).text()), doc, 'Accept: application/yaml')
  t.same(parse(await (await byAccept('text/x-yaml, */*')).text()), doc, 'Accept: text/x-yaml')

  const page = await byAccept('text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8')
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/, 'a browser gets the page')
  t.match(page.headers.get('content-security-policy'), /default-src 'none'/, 'the page loads nothing')
  const html = await page.text()
  t.match(html, /chat\.send/)
  t.match(html, /room\/\{name\}/)
  t.match(html, /href="\/asyncapi\.json"/, 'it links the JSON')
  t.notMatch(html, /<script|https?:\/\/(?!127\.0\.0\.1)/, 'no script, no outside address')
  t.match((await fetch(`${base}/asyncapi`)).headers.get('content-type'), /^text\/html/, 'no Accept: the page')
})

t.test('the dashboard\'s internal topic stays out of the served document', async (t) => {
  const app = Fastify()
  await app.register(realtime, { asyncapi: {} })
  app.realtime.topic('room/:name', { message: Type.Object({ text: Type.String() }) })
  await app.register(realtimeDashboard, { authorize: () => true })
  t.teardown(() => app.close())
  const doc = (await app.inject('/asyncapi.json')).json() as AsyncApiDocument
  t.same(Object.keys(doc.channels).sort(), ['connection', 'room.name'], 'the app\'s topics only')
  t.notMatch(JSON.stringify(doc), /\$realtime/, 'nothing names $realtime/dashboard')
  t.notMatch((await app.inject('/asyncapi.yaml')).body, /\$realtime/, 'nor the YAML')
  t.notMatch(JSON.stringify(app.realtime.asyncapi()), /\$realtime/, 'nor app.realtime.asyncapi()')
})

t.test('server.url names the server; behind a proxy the forwarded protocol gives wss', async (t) => {
  const fixed = Fastify()
  await fixed.register(realtime, { asyncapi: { path: '/api', server: { url: 'wss://rt.example.com' } } })
  t.teardown(() => fixed.close())
  const a = (await fixed.inject('/api.json')).json() as AsyncApiDocument
  t.match(a.servers.realtime, { host: 'rt.example.com', protocol: 'wss' })
  t.match(fixed.realtime.asyncapi().servers.realtime, { host: 'rt.example.com' }, 'the option also holds for asyncapi()')
  t.match(fixed.realtime.asyncapi({ server: { url: 'ws://other:1' } }).servers.realtime, { host: 'other:1' }, 'and the call\'s over it')

  const proxied = Fastify({ trustProxy: true })
  await proxied.register(realtime, { asyncapi: { path: '/api' } })
  t.teardown(() => proxied.close())
  const b = (await proxied.inject({ url: '/api.json', headers: { host: 'chat.example.com', 'x-forwarded-proto': 'https' } })).json() as AsyncApiDocument
  t.match(b.servers.realtime, { host: 'chat.example.com', protocol: 'wss', pathname: '/ws' })
})

t.test('without the option nothing is served, and asyncapi() names the listening address', async (t) => {
  const app = Fastify()
  await app.register(realtime, {})
  app.realtime.route({ type: 'x.y', schema: { data: Type.Object({}) }, handler: () => undefined })
  t.teardown(() => app.close())
  t.equal((await app.inject('/asyncapi')).statusCode, 404)
  t.equal(app.realtime.asyncapi().servers.realtime.host, 'localhost', 'before listening: localhost')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  t.equal(app.realtime.asyncapi().servers.realtime.host, `127.0.0.1:${port}`)
  t.ok(app.realtime.asyncapi().operations['x.y'])
})

t.test('the option is checked at register, naming what is wrong', async (t) => {
  for (const [asyncapi, name] of [
    [{ path: 'docs' }, 'asyncapi.path'],
    [{ server: { url: 'http://x' } }, 'asyncapi.server.url'],
    [{ server: { url: 'ws://x/path' } }, 'asyncapi.server.url'],
    [{ info: { title: 3 } }, 'asyncapi.info.title'],
    ['yes', 'asyncapi']
  ] as const) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(realtime, { asyncapi } as never).ready() }, { code: 'FST_REALTIME_INVALID_OPTION', message: new RegExp(`"${name.replace(/\./g, '\\.')}"`) }, JSON.stringify(asyncapi))
    await app.close()
  }
  const app = Fastify()
  await app.register(realtime, { asyncapi: {} })
  t.teardown(() => app.close())
  t.equal((await app.inject('/asyncapi.json')).statusCode, 200, 'path defaults to /asyncapi')
})

t.test('the served document follows declarations made after it was first asked for; a bad Host does not break it', async (t) => {
  const app = Fastify()
  await app.register(realtime, { asyncapi: { path: '/api' } })
  t.teardown(() => app.close())
  const first = (await app.inject('/api.json')).json() as AsyncApiDocument
  t.notOk(first.operations['late.route'])
  app.realtime.route({ type: 'late.route', schema: { data: Type.Object({}) }, handler: () => undefined })
  const second = (await app.inject('/api.json')).json() as AsyncApiDocument
  t.ok(second.operations['late.route'], 'a route declared later is in the next document')
  const again = (await app.inject({ url: '/api.json', headers: { host: 'other.example.com:81' } })).json() as AsyncApiDocument
  t.equal(again.servers.realtime.host, 'other.example.com:81', 'each request names its own host')
  const bad = await app.inject({ url: '/api.json', headers: { host: 'bad host%' } })
  t.equal(bad.statusCode, 200, 'a Host that is no URL still gets the document')
  t.equal((bad.json() as AsyncApiDocument).servers.realtime.host, 'localhost', 'naming the default host')
})

t.test('listening addresses as server URLs', async (t) => {
  t.equal(urlOf({ address: '127.0.0.1', family: 'IPv4', port: 80 }), 'ws://127.0.0.1:80')
  t.equal(urlOf({ address: '::1', family: 'IPv6', port: 81 }), 'ws://[::1]:81')
  t.equal(urlOf({ address: '0.0.0.0', family: 'IPv4', port: 82 }), 'ws://localhost:82', 'a wildcard address is written localhost')
  t.equal(urlOf({ address: '::', family: 'IPv6', port: 83 }), 'ws://localhost:83')
  t.equal(urlOf('/tmp/socket'), undefined, 'a Unix socket has no URL')
  t.equal(urlOf(null), undefined)
})

t.test('the page escapes what the application wrote', async (t) => {
  const app = Fastify()
  await app.register(realtime, { asyncapi: { info: { title: '<script>alert(1)</script>', description: 'a `<b>` tag' } } })
  app.realtime.event('note', Type.Object({ text: Type.String({ description: '"quoted" & <b>' }) }, { additionalProperties: false }))
  t.teardown(() => app.close())
  const html = renderPage(app.realtime.asyncapi())
  t.notMatch(html, /<script>|<b>/)
  t.match(html, /&#60;script&#62;alert\(1\)/)
  t.match(html, /<code>&#60;b&#62;<\/code>/, 'backquoted words are code, escaped')
  t.match(html, /no other properties/)
  t.notMatch(html, /also as/, 'no links when none are given')
  t.equal(escapeHtml('\'&'), '&#39;&#38;')
})
