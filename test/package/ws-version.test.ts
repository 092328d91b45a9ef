// The WebSocket layer must carry the fixes our security tests rely on. This fails when
// the installed ws, as resolved from the project and as resolved from
// @fastify/websocket (the copy that actually serves), is older than MINIMUM.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const MINIMUM = '8.21.0'

/** Compares two x.y.z versions (a pre-release suffix sorts before its release). */
function compareVersions (a: string, b: string): number {
  const parse = (v: string) => {
    const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?/.exec(v.trim())
    if (m === null) throw new Error(`not a version: ${v}`)
    return { parts: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] }
  }
  const x = parse(a)
  const y = parse(b)
  for (let i = 0; i < 3; i++) {
    if (x.parts[i] !== y.parts[i]) return x.parts[i] < y.parts[i] ? -1 : 1
  }
  if (x.pre === y.pre) return 0
  if (x.pre === undefined) return 1
  if (y.pre === undefined) return -1
  return x.pre < y.pre ? -1 : 1
}

function versionOf (from: string): { version: string, path: string } {
  const path = createRequire(from).resolve('ws/package.json')
  return { version: (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version, path }
}

t.test('the version comparison', async (t) => {
  t.equal(compareVersions('8.21.0', '8.21.0'), 0)
  t.equal(compareVersions('8.20.9', '8.21.0'), -1)
  t.equal(compareVersions('8.9.0', '8.21.0'), -1, 'numeric, not lexical')
  t.equal(compareVersions('8.21.1', '8.21.0'), 1)
  t.equal(compareVersions('9.0.0', '8.21.0'), 1)
  t.equal(compareVersions('7.99.99', '8.21.0'), -1)
  t.equal(compareVersions('8.21.0-beta.1', '8.21.0'), -1, 'a pre-release comes before its release')
  t.throws(() => compareVersions('latest', '8.21.0'))
})

t.test(`ws is at least ${MINIMUM}`, async (t) => {
  const project = versionOf(import.meta.url)
  t.ok(compareVersions(project.version, MINIMUM) >= 0, `ws ${project.version} (${project.path}) >= ${MINIMUM}`)
  // The copy @fastify/websocket loads is the one on the wire; it may be a nested one.
  const serving = versionOf(createRequire(import.meta.url).resolve('@fastify/websocket'))
  t.ok(compareVersions(serving.version, MINIMUM) >= 0, `ws used by @fastify/websocket: ${serving.version} (${serving.path}) >= ${MINIMUM}`)
})
