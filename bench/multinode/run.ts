// `npm run bench -- --multinode`: several server nodes sharing Redis, the plugin beside
// Socket.IO with its sharded Redis adapter, in one run. For each Redis (one instance, a
// cluster of three masters), each node count (2, 3) and each implementation: subscribers
// spread evenly over the nodes, one publisher on the first node sending `publications`
// with `window` in flight. Figures: deliveries per second (until the last subscriber has
// the last publication), publish round trip (the publisher's request to its answer),
// delivery latency (publish to receipt, one clock), and Redis CPU per publication
// (used_cpu_user + used_cpu_sys from INFO cpu, summed over every Redis process). Beside
// them, the plugin on the PostgreSQL broker, on a private PostgreSQL of the bench's own
// (its CPU per publication: user + system time of its processes, from /proc).
// MULTINODE_BACKENDS=standalone,cluster,postgres picks some. Writes bench/results/multinode.json.
// Socket.IO's PostgreSQL adapter is not measured (not installed here).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { io as ioClient, type Socket } from 'socket.io-client'
import { WebSocket } from 'ws'
import { RedisServer, freePort } from '../../test/fixtures/redis.js'
import { RedisClusterServer } from '../../test/fixtures/redis-cluster.js'
import { PostgresServer, hasPostgresBinaries } from '../../test/fixtures/postgres.js'
import { readFile, readdir } from 'node:fs/promises'
import { percentileOf } from '../lib/histogram.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.join(HERE, '..', '..')

export interface MultinodeCounts {
  subscribers: number
  publications: number
  window: number
  warmup: number
}

export const MULTINODE_QUICK: MultinodeCounts = { subscribers: 300, publications: 2000, window: 50, warmup: 50 }
export const MULTINODE_FULL: MultinodeCounts = { subscribers: 1000, publications: 10_000, window: 100, warmup: 200 }

interface Backend {
  name: 'standalone' | 'cluster' | 'postgres'
  env: Record<string, string>
  /** CPU seconds the store has used so far. */
  cpu: () => Promise<number>
  /** Implementations measured on it. */
  impls: Array<'plugin' | 'socketio'>
}

export interface MultinodeRow {
  redis: Backend['name']
  nodes: number
  impl: 'plugin' | 'socketio'
  deliveriesPerSecond: number
  publishP50: number
  publishP99: number
  latencyP50: number
  latencyP99: number
  redisCpuMicrosPerPublication: number
  lost: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function startNode (impl: string, backend: Backend, prefix: string): Promise<{ child: ChildProcess, port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'server.ts')], {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL: '', REDIS_CLUSTER_NODES: '', ...backend.env, IMPL: impl, PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const line = out.split('\n').find((l) => l.startsWith('{"port"'))
      if (line !== undefined) resolve({ child, port: (JSON.parse(line) as { port: number }).port })
    })
    child.once('exit', (code) => reject(new Error(`bench node (${impl}) exited with ${code}`)))
  })
}

async function stopNode (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** CPU seconds Redis has used, summed over its processes. */
async function redisCpu (ports: number[]): Promise<number> {
  let total = 0
  for (const port of ports) {
    const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 })
    await client.connect()
    const info = await client.info('cpu')
    client.disconnect()
    const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0)
    total += read('used_cpu_user') + read('used_cpu_sys')
  }
  return total
}

/** CPU seconds a PostgreSQL has used: its postmaster and every process under it (user + system, from /proc). */
async function postgresCpu (postmaster: number): Promise<number> {
  let ticks = 0
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(entry) !== postmaster && Number(fields[1]) !== postmaster) continue
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks / 100
}

/** A subscriber or the publisher, for either implementation. */
interface BenchClient {
  subscribe: (topic: string) => Promise<void>
  publish: (topic: string, data: unknown) => Promise<void>
  onMessage: (fn: (data: { t: number, seq: number }) => void) => void
  close: () => void
}

async function pluginClient (port: number): Promise<BenchClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, 'realtime.v1')
  const pending = new Map<number, () => void>()
  let listener: (data: { t: number, seq: number }) => void = () => {}
  let next = 1
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject)
    ws.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as { type: string, id?: number, data?: any }
      if (frame.type === 'welcome') resolve()
      else if (frame.type === 'message') listener(frame.data)
      else if ((frame.type === 'reply' || frame.type === 'error') && frame.id !== undefined) {
        pending.get(frame.id)?.()
        pending.delete(frame.id)
      }
    })
  })
  const request = (type: string, data: unknown) => new Promise<void>((resolve) => {
    const id = next++
    pending.set(id, resolve)
    ws.send(JSON.stringify({ type, id, data }))
  })
  return {
    subscribe: (topic) => request('subscribe', { topic }),
    publish: (topic, data) => request('publish', { topic, data }),
    onMessage: (fn) => { listener = fn },
    close: () => ws.terminate()
  }
}

async function socketioClient (port: number): Promise<BenchClient> {
  const socket: Socket = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', reject)
  })
  return {
    subscribe: (room) => new Promise((resolve) => socket.emit('join', room, () => resolve())),
    publish: (room, data) => new Promise((resolve) => socket.emit('publish', room, data, () => resolve())),
    onMessage: (fn) => { socket.on('message', fn) },
    close: () => socket.disconnect()
  }
}

async function measure (impl: 'plugin' | 'socketio', backend: Backend, nodeCount: number, counts: MultinodeCounts): Promise<MultinodeRow> {
  const prefix = backend.name === 'postgres' ? `bench_${impl}_${nodeCount}_${Date.now()}` : `bench:${impl}:${nodeCount}:${Date.now()}:`
  const nodes = []
  for (let i = 0; i < nodeCount; i++) nodes.push(await startNode(impl, backend, prefix))
  const make = impl === 'plugin' ? pluginClient : socketioClient
  const topic = 'bench/multi'
  const subscribers: BenchClient[] = []
  const received: number[] = []
  const latencies: number[] = []
  let measuring = false
  try {
    for (let i = 0; i < counts.subscribers; i++) {
      const client = await make(nodes[i % nodeCount].port)
      const index = subscribers.length
      received.push(0)
      client.onMessage((data) => {
        if (data.seq < 0) return
        received[index]++
        if (measuring) latencies.push(performance.now() - data.t)
      })
      await client.subscribe(topic)
      subscribers.push(client)
    }
    const publisher = await make(nodes[0].port)
    const send = async (count: number, seqOf: (i: number) => number, rtts: number[] | null) => {
      let sent = 0
      const lane = async () => {
        while (sent < count) {
          const seq = seqOf(sent++)
          const started = performance.now()
          await publisher.publish(topic, { t: started, seq, pad: 'x'.repeat(64) })
          rtts?.push(performance.now() - started)
        }
      }
      await Promise.all(Array.from({ length: counts.window }, lane))
    }
    // Warm-up (negative seq: not counted), then a pause for it to drain.
    await send(counts.warmup, (i) => -1 - i, null)
    await sleep(300)
    // What Redis spends idle (its cron; on a cluster, gossip between the nodes) is not
    // the publications' cost: measured over a quiet second, then taken out. Without it a
    // longer run (a slower implementation) would be charged more of it.
    const idleFrom = await backend.cpu()
    const idleStarted = performance.now()
    await sleep(1000)
    const idlePerSecond = (await backend.cpu() - idleFrom) / ((performance.now() - idleStarted) / 1000)
    const cpuBefore = await backend.cpu()
    measuring = true
    const rtts: number[] = []
    const started = performance.now()
    await send(counts.publications, (i) => i, rtts)
    const want = counts.publications
    const deadline = Date.now() + 30_000
    while (received.some((n) => n < want) && Date.now() < deadline) await sleep(5)
    const elapsed = (performance.now() - started) / 1000
    const cpuAfter = await backend.cpu()
    const delivered = received.reduce((a, b) => a + Math.min(b, want), 0)
    publisher.close()
    return {
      redis: backend.name,
      nodes: nodeCount,
      impl,
      deliveriesPerSecond: Math.round(delivered / elapsed),
      publishP50: percentileOf(rtts, 50),
      publishP99: percentileOf(rtts, 99),
      latencyP50: percentileOf(latencies, 50),
      latencyP99: percentileOf(latencies, 99),
      redisCpuMicrosPerPublication: Math.round(Math.max(0, cpuAfter - cpuBefore - idlePerSecond * elapsed) * 1e6 / counts.publications),
      lost: counts.subscribers * want - delivered
    }
  } finally {
    for (const client of subscribers) client.close()
    await Promise.all(nodes.map((n) => stopNode(n.child)))
  }
}

function table (rows: MultinodeRow[]): string {
  const head = ['store', 'nodes', 'implementation', 'deliveries/s', 'vs Socket.IO', 'publish p50 ms', 'p99 ms', 'latency p50 ms', 'p99 ms', 'store CPU µs/pub', 'vs Socket.IO', 'lost']
  const lines = [head]
  for (const row of rows) {
    const peer = rows.find((r) => r.redis === row.redis && r.nodes === row.nodes && r.impl === 'socketio')
    const x = (a: number, b: number | undefined) => b === undefined || b === 0 ? '' : `${(a / b).toFixed(2)}×`
    lines.push([
      row.redis, String(row.nodes), row.impl === 'plugin' ? 'fastify-realtime' : 'Socket.IO (sharded adapter)',
      row.deliveriesPerSecond.toLocaleString('en-US'), row.impl === 'plugin' ? x(row.deliveriesPerSecond, peer?.deliveriesPerSecond) : '',
      row.publishP50.toFixed(2), row.publishP99.toFixed(2), row.latencyP50.toFixed(2), row.latencyP99.toFixed(2),
      String(row.redisCpuMicrosPerPublication), row.impl === 'plugin' ? x(row.redisCpuMicrosPerPublication, peer?.redisCpuMicrosPerPublication) : '',
      String(row.lost)
    ])
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)))
  return lines.map((l) => l.map((cell, i) => cell.padEnd(widths[i])).join('  ')).join('\n')
}

export async function runMultinode (counts: MultinodeCounts, outFile: string): Promise<MultinodeRow[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rt-bench-'))
  const wanted = new Set((process.env.MULTINODE_BACKENDS ?? 'standalone,cluster,postgres').split(','))
  const single = new RedisServer(await freePort())
  const cluster = new RedisClusterServer(dir, 1000)
  let postgres: PostgresServer | null = null
  const rows: MultinodeRow[] = []
  try {
    const backends: Backend[] = []
    if (wanted.has('standalone')) {
      await single.start()
      backends.push({ name: 'standalone', env: { REDIS_URL: single.url }, cpu: () => redisCpu([single.port]), impls: ['plugin', 'socketio'] })
    }
    if (wanted.has('cluster')) {
      await cluster.create(3, 0)
      backends.push({ name: 'cluster', env: { REDIS_CLUSTER_NODES: cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',') }, cpu: () => redisCpu(cluster.ports), impls: ['plugin', 'socketio'] })
    }
    if (wanted.has('postgres') && hasPostgresBinaries()) {
      const server = postgres = await PostgresServer.create()
      await server.start()
      const postmaster = Number((await readFile(path.join(server.dir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0])
      backends.push({ name: 'postgres', env: { DATABASE_URL: server.url }, cpu: () => postgresCpu(postmaster), impls: ['plugin'] })
    }
    for (const backend of backends) {
      for (const nodeCount of [2, 3]) {
        for (const impl of backend.impls) {
          const row = await measure(impl, backend, nodeCount, counts)
          console.error(`multinode: ${backend.name}, ${nodeCount} nodes, ${impl}: ${row.deliveriesPerSecond} deliveries/s`)
          rows.push(row)
        }
      }
    }
  } finally {
    await single.kill()
    await cluster.stop()
    await postgres?.remove()
  }
  console.log(`\nMulti-node: ${counts.subscribers} subscribers spread over the nodes, one publisher on node 1, ${counts.publications} publications, ${counts.window} in flight\n`)
  console.log(table(rows))
  await writeFile(outFile, JSON.stringify({
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, load: os.loadavg() },
    counts,
    note: 'indicative: the machine is shared with other work; the subscribers and the publisher run in the orchestrating process',
    rows
  }, null, 2) + '\n')
  return rows
}
