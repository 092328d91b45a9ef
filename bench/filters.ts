// Filtered fan-out: server CPU per delivered publication when 1,000 subscribers of one
// topic carry 100 distinct filters (each publication matches one filter: 10 deliveries),
// against unfiltered fan-out to the same deliveries: 1,000 other subscribers on 100
// topics, 10 on each, the publications going round the topics. Both write each socket
// one message in a hundred publications, so the comparison is the cost of filtering,
// not of writing (a socket that gets ten messages in a turn writes them in one syscall:
// the third line, 10 subscribers of one topic, shows how much that alone changes).
//
//   npm run bench:filters                       # 1,000 subscribers, 100 filters, 2,000 publications
//   npm run bench:filters -- --publications 5000
//
// The server runs in a child process (this file, argument `server`); the clients run
// here, so their parsing is not counted. Server CPU is the child's own cpuUsage, read
// before the first publication and after the last delivery arrived.
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { WebSocket } from 'ws'

const SUBSCRIBERS = 1000
const FILTERS = 100

interface Measure { deliveries: number, cpuMicros: number, wallMs: number }

if (process.argv[2] === 'server') await serve()
else await main()

async function serve (): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const { Type } = await import('@sinclair/typebox')
  const { default: realtime } = await import('../lib/index.js')
  const app = Fastify()
  await app.register(realtime, {
    rateLimit: { rate: 1e9, burst: 1e9 },
    maxConnectionsPerIp: 1_000_000,
    maxSubscriptions: 4,
    filters: { maxPerTopic: FILTERS }
  })
  const Message = Type.Object({ seq: Type.Integer(), pad: Type.String() })
  app.realtime.topic('filtered', { message: Message, tags: { schema: Type.Object({ k: Type.Integer() }), from: (m) => ({ k: m.seq % FILTERS }) } })
  app.realtime.topic('plain/:n', { message: Message })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const send = (message: unknown): void => { process.send?.(message) }
  process.on('message', (command: { op: string, topic?: string, count?: number }) => {
    if (command.op === 'cpu') {
      const cpu = process.cpuUsage()
      send({ op: 'cpu', micros: cpu.user + cpu.system })
    } else if (command.op === 'publish') {
      const pad = 'x'.repeat(60)
      let seq = 0
      // A few publications per turn, as a busy app would make them.
      const turn = (): void => {
        for (let i = 0; i < 10 && seq < (command.count as number); i++) {
          const topic = command.topic === 'round' ? `plain/${seq % FILTERS}` : command.topic as string
          app.realtime.publish(topic, { seq: seq++, pad }).catch((err) => console.error(err))
        }
        if (seq < (command.count as number)) setImmediate(turn)
      }
      turn()
    } else if (command.op === 'stop') {
      app.close().then(() => process.exit(0), () => process.exit(1))
    }
  })
  send({ op: 'ready', port: (app.server.address() as { port: number }).port })
}

function request (child: ChildProcess, command: Record<string, unknown>, reply: string): Promise<any> {
  return new Promise((resolve) => {
    const on = (message: { op: string }): void => {
      if (message.op !== reply) return
      child.off('message', on)
      resolve(message)
    }
    child.on('message', on)
    child.send(command)
  })
}

async function open (url: string, subscribe: Record<string, unknown>, counter: { n: number }): Promise<WebSocket> {
  const ws = new WebSocket(url, 'realtime.v1', { perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (raw) => {
      const text = raw.toString()
      if (text.startsWith('{"type":"message"')) counter.n++
      else if (text.startsWith('{"type":"welcome"')) ws.send(JSON.stringify({ type: 'subscribe', id: 1, data: subscribe }))
      else if (text.startsWith('{"type":"reply"')) resolve()
      else if (text.startsWith('{"type":"error"')) reject(new Error(text))
    })
    ws.once('error', reject)
  })
  return ws
}

async function measure (child: ChildProcess, topic: string, publications: number, expected: number, counter: { n: number }): Promise<Measure> {
  counter.n = 0
  const before = (await request(child, { op: 'cpu' }, 'cpu')).micros as number
  const started = performance.now()
  child.send({ op: 'publish', topic, count: publications })
  const deadline = Date.now() + 120_000
  while (counter.n < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  const wallMs = performance.now() - started
  const after = (await request(child, { op: 'cpu' }, 'cpu')).micros as number
  if (counter.n < expected) console.warn(`${topic}: ${counter.n} of ${expected} deliveries arrived in time`)
  return { deliveries: counter.n, cpuMicros: after - before, wallMs }
}

async function main (): Promise<void> {
  const at = process.argv.indexOf('--publications')
  const publications = at > 0 ? Number(process.argv[at + 1]) : 2000
  const child = fork(fileURLToPath(import.meta.url), ['server'], { execArgv: ['--import', 'tsx', ...(process.env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_CPU_PROF])] })
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', resolve as never))
  const url = `ws://127.0.0.1:${port}/ws`
  const sockets: WebSocket[] = []
  const counters = { filtered: { n: 0 }, round: { n: 0 }, ten: { n: 0 }, all: { n: 0 } }
  try {
    for (let i = 0; i < SUBSCRIBERS; i += 100) {
      sockets.push(...await Promise.all(Array.from({ length: 100 }, (_, j) => open(url, { topic: 'filtered', filter: { tag: 'k', eq: (i + j) % FILTERS } }, counters.filtered))))
    }
    for (let i = 0; i < SUBSCRIBERS; i += 100) {
      sockets.push(...await Promise.all(Array.from({ length: 100 }, (_, j) => open(url, { topic: `plain/${(i + j) % FILTERS}` }, counters.round))))
    }
    for (let i = 0; i < SUBSCRIBERS / FILTERS; i++) sockets.push(await open(url, { topic: 'plain/ten' }, counters.ten))
    for (let i = 0; i < SUBSCRIBERS; i += 100) {
      sockets.push(...await Promise.all(Array.from({ length: 100 }, () => open(url, { topic: 'plain/all' }, counters.all))))
    }
    const perPublication = SUBSCRIBERS / FILTERS
    // Warm-up, then each measured in turn, twice, keeping the better (a shared machine).
    await measure(child, 'filtered', 200, 200 * perPublication, counters.filtered)
    await measure(child, 'round', 200, 200 * perPublication, counters.round)
    const runs: Record<string, Measure[]> = { filtered: [], round: [], ten: [], all: [] }
    for (let r = 0; r < 3; r++) {
      runs.filtered.push(await measure(child, 'filtered', publications, publications * perPublication, counters.filtered))
      runs.round.push(await measure(child, 'round', publications, publications * perPublication, counters.round))
      runs.ten.push(await measure(child, 'plain/ten', publications, publications * perPublication, counters.ten))
      runs.all.push(await measure(child, 'plain/all', Math.round(publications / 10), Math.round(publications / 10) * SUBSCRIBERS, counters.all))
    }
    const best = (list: Measure[]): Measure => list.reduce((a, b) => (a.cpuMicros / a.deliveries <= b.cpuMicros / b.deliveries ? a : b))
    const row = (name: string, m: Measure): string => `${name.padEnd(58)} ${(m.cpuMicros / m.deliveries).toFixed(2).padStart(8)} µs/delivery  ${m.deliveries.toLocaleString('en-US').padStart(9)} deliveries  ${Math.round(m.deliveries / (m.wallMs / 1000)).toLocaleString('en-US').padStart(9)} deliveries/s`
    const filtered = best(runs.filtered)
    const round = best(runs.round)
    console.log(`Filtered fan-out, ${publications.toLocaleString('en-US')} publications, server CPU per delivery (user + system), best of 3:`)
    console.log(row(`${SUBSCRIBERS} subscribers of 1 topic, ${FILTERS} distinct filters`, filtered))
    console.log(row(`${SUBSCRIBERS} subscribers of ${FILTERS} topics, no filter (same deliveries)`, round))
    console.log(row(`${perPublication} subscribers of 1 topic, no filter (same deliveries)`, best(runs.ten)))
    console.log(row(`${SUBSCRIBERS} subscribers of 1 topic, no filter (for scale)`, best(runs.all)))
    console.log(`ratio filtered / unfiltered at the same deliveries: ${((filtered.cpuMicros / filtered.deliveries) / (round.cpuMicros / round.deliveries)).toFixed(2)}×`)
  } finally {
    for (const ws of sockets) ws.terminate()
    child.send({ op: 'stop' })
  }
}
