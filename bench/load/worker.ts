// A load-generator process. It holds client connections and runs the client side
// of each scenario when the orchestrator asks (over the control channel):
//
//   open      open `count` connections (optionally subscribing each to a topic)
//   arm       start counting publications; `collect` waits for them
//   requests  every client sends `perClient` echo requests, `window` at a time
//   closeAll  close every connection
//   probeStart/probeStop  round trips on a connection of its own while the others are loaded
//
// Every command is bounded by a count and a deadline, and reports the CPU this
// process used meanwhile, which tells whether the load generator was the bottleneck.

import { cpuMicros, sleep, wallNow } from '../lib/clock.js'
import { serveControl } from '../lib/control.js'
import { Histogram, type SparseHistogram } from '../lib/histogram.js'
import { createClient, loopbackSource, type BenchClient, type ClientKind } from './clients.js'

export interface OpenArgs {
  kind: ClientKind
  urls: string[]
  count: number
  concurrency: number
  topic?: string
  /** Offer permessage-deflate. */
  deflate?: boolean
  /** Index of this worker's first client across all workers (spreads clients over urls). */
  firstIndex: number
  /** Each client from a loopback source address of its own (127.0.0.0/8), as the scale scenario asks. */
  spreadSources?: boolean
  timeoutMs: number
}

export interface OpenResult {
  opened: number
  failed: number
  firstError?: string
  startWall: number
  endWall: number
  cpuMicros: number
  /** Time from start to each connection being usable, in µs. */
  connectLatency: SparseHistogram
}

export interface ArmArgs {
  perClient: number
  /** Keep the latest arrival time per sequence number (for timing whole broadcasts). */
  trackSeq: number
}

export interface CollectResult {
  received: number
  expected: number
  firstWall: number
  lastWall: number
  armWall: number
  latency: SparseHistogram
  /** Per tracked sequence number: [seq, send time, latest arrival], times in wall ms. */
  seqTimes: Array<[number, number, number]>
  cpuMicros: number
  endWall: number
  timedOut: boolean
}

export interface RequestsArgs {
  perClient: number
  window: number
  timeoutMs: number
}

export interface RequestsResult {
  completed: number
  failed: number
  expected: number
  startWall: number
  endWall: number
  latency: SparseHistogram
  cpuMicros: number
  timedOut: boolean
}

let clients: BenchClient[] = []
let kindInUse: ClientKind | null = null

async function open (args: OpenArgs): Promise<OpenResult> {
  if (kindInUse !== null && kindInUse !== args.kind && clients.length > 0) throw new Error('close the other clients first')
  kindInUse = args.kind
  const cpu0 = process.cpuUsage()
  const startWall = wallNow()
  const deadline = Date.now() + args.timeoutMs
  const connectLatency = new Histogram()
  let next = 0
  let opened = 0
  let failed = 0
  let firstError: string | undefined
  const lane = async () => {
    while (next < args.count && Date.now() < deadline) {
      const index = args.firstIndex + next++
      const started = performance.now()
      const client = createClient(args.kind, args.urls[index % args.urls.length], args.deflate === true, args.spreadSources === true ? loopbackSource(index) : undefined)
      clients.push(client)
      try {
        await client.ready
        if (args.topic !== undefined) await client.subscribe(args.topic)
        connectLatency.record((performance.now() - started) * 1000)
        opened++
      } catch (err) {
        failed++
        firstError ??= (err as Error)?.message ?? String(err)
        client.terminate()
      }
    }
  }
  const lanes = Array.from({ length: Math.max(1, Math.min(args.concurrency, args.count)) }, lane)
  // The lanes stop taking new work at the deadline; a hung handshake is cut by its own timeout.
  await Promise.all(lanes)
  return { opened, failed, firstError, startWall, endWall: wallNow(), cpuMicros: cpuMicros(cpu0), connectLatency: connectLatency.toJSON() }
}

interface Armed {
  args: ArmArgs
  expected: number
  received: number
  firstWall: number
  lastWall: number
  armWall: number
  latency: Histogram
  seqTimes: Array<[number, number, number]>
  cpu0: NodeJS.CpuUsage
  complete: () => void
  whenComplete: Promise<void>
}

let armed: Armed | null = null

function arm (args: ArmArgs): boolean {
  let complete: () => void = () => {}
  const whenComplete = new Promise<void>((resolve) => { complete = resolve })
  const state: Armed = {
    args,
    expected: clients.length * args.perClient,
    received: 0,
    firstWall: 0,
    lastWall: 0,
    armWall: wallNow(),
    latency: new Histogram(),
    seqTimes: [],
    cpu0: process.cpuUsage(),
    complete,
    whenComplete
  }
  const track = args.trackSeq > 0
  const onPublication = (t: number, seq: number) => {
    const now = wallNow()
    if (state.received === 0) state.firstWall = now
    state.lastWall = now
    state.received++
    state.latency.record((now - t) * 1000)
    if (track && seq >= 0 && seq < args.trackSeq) {
      const entry = state.seqTimes[seq]
      if (entry === undefined) state.seqTimes[seq] = [seq, t, now]
      else if (now > entry[2]) entry[2] = now
    }
    if (state.received >= state.expected) state.complete()
  }
  for (const client of clients) client.onPublication = onPublication
  armed = state
  if (state.expected === 0) complete()
  return true
}

async function collect (args: { timeoutMs: number }): Promise<CollectResult> {
  const state = armed
  if (state === null) throw new Error('collect before arm')
  let timedOut = false
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    state.whenComplete,
    new Promise<void>((resolve) => { timer = setTimeout(() => { timedOut = true; resolve() }, args.timeoutMs) })
  ])
  clearTimeout(timer)
  for (const client of clients) client.onPublication = null
  armed = null
  return {
    received: state.received,
    expected: state.expected,
    firstWall: state.firstWall,
    lastWall: state.lastWall,
    armWall: state.armWall,
    latency: state.latency.toJSON(),
    seqTimes: state.seqTimes.filter((entry) => entry !== undefined),
    cpuMicros: cpuMicros(state.cpu0),
    endWall: wallNow(),
    timedOut
  }
}

async function requests (args: RequestsArgs): Promise<RequestsResult> {
  const cpu0 = process.cpuUsage()
  const startWall = wallNow()
  const deadline = Date.now() + args.timeoutMs
  const latency = new Histogram()
  const expected = clients.length * args.perClient
  let completed = 0
  let failed = 0
  let timedOut = false
  await new Promise<void>((resolve) => {
    let finished = false
    const finish = () => { if (!finished) { finished = true; clearTimeout(timer); resolve() } }
    const timer = setTimeout(() => { timedOut = true; finish() }, args.timeoutMs)
    if (expected === 0) finish()
    for (const client of clients) {
      let sent = 0
      const sendOne = () => {
        if (sent >= args.perClient || finished || Date.now() > deadline) return
        sent++
        const started = performance.now()
        client.echo({ t: Date.now(), text: 'hello' }, (ok) => {
          latency.record((performance.now() - started) * 1000)
          if (ok) completed++
          else failed++
          if (completed + failed >= expected) finish()
          else sendOne()
        })
      }
      for (let i = 0; i < args.window; i++) sendOne()
    }
  })
  return { completed, failed, expected, startWall, endWall: wallNow(), latency: latency.toJSON(), cpuMicros: cpuMicros(cpu0), timedOut }
}

/**
 * The probe: one connection of its own (not among `clients`, subscribed to nothing) that
 * sends one echo request at a time, for as long as it runs, and records each round trip:
 * what a request on another connection waits while the server fans out.
 */
let probe: { client: BenchClient, latency: Histogram, running: boolean, failed: number } | null = null

async function probeStart (args: { kind: ClientKind, url: string, timeoutMs: number }): Promise<boolean> {
  if (probe !== null) throw new Error('a probe is already running')
  const client = createClient(args.kind, args.url)
  await Promise.race([client.ready, sleep(args.timeoutMs).then(() => { throw new Error('the probe did not connect') })])
  const state = { client, latency: new Histogram(), running: true, failed: 0 }
  probe = state
  const next = (): void => {
    if (!state.running) return
    const started = performance.now()
    client.echo({ t: Date.now(), text: 'probe' }, (ok) => {
      if (ok) state.latency.record((performance.now() - started) * 1000)
      else state.failed++
      // A round trip every millisecond at most: the probe measures, it does not load.
      setTimeout(next, 1)
    })
  }
  next()
  return true
}

async function probeStop (): Promise<{ latency: SparseHistogram, failed: number }> {
  const state = probe
  if (state === null) throw new Error('no probe is running')
  probe = null
  state.running = false
  state.client.terminate()
  return { latency: state.latency.toJSON(), failed: state.failed }
}

async function closeAll (args: { timeoutMs: number }): Promise<number> {
  const closing = clients
  clients = []
  kindInUse = null
  // Cleanup is not measured: drop the connections without a closing handshake.
  for (const client of closing) client.terminate()
  await Promise.race([Promise.all(closing.map((c) => c.closed)), sleep(args.timeoutMs)])
  return closing.length
}

serveControl({
  open,
  arm,
  collect,
  requests,
  closeAll,
  probeStart,
  probeStop,
  stats: () => ({ cpuMicros: cpuMicros(), clients: clients.length }),
  shutdown: async () => { for (const client of clients) client.terminate() }
}, { pid: process.pid })
