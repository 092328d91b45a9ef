// `npm run bench`: starts every server variant and the load generators as child
// processes, runs each scenario against each variant, prints the tables and writes
// bench/results/latest.json and bench/results/latest.svg.
//
//   npm run bench                  quick mode (default; under a minute on an idle 2-core machine)
//   npm run bench -- --full        the documented full run
//   npm run bench -- --only plugin,ws-send-once --scenarios fanout,memory
//   npm run bench -- --repeat 3    medians of three runs of each scenario
//   npm run bench -- --set fanoutPublications=500
//   npm run bench -- --workers 1   load-generator processes (1 or 2)
//   npm run bench -- --cpu-prof    write V8 CPU profiles of the servers to bench/results/profiles/
//   npm run bench -- --multinode   only the multi-node scenario on Redis and Redis Cluster (bench/multinode)
//   npm run bench -- --ticker      only the ticker scenario: JSON, MessagePack, deltas, compress-once, Socket.IO (bench/ticker)
//
// See bench/README.md for what each figure means.

import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { cpuMicros } from './lib/clock.js'
import { Child, killAllChildren, liveChildren } from './lib/control.js'
import { machineCpu, otherCpuShare } from './lib/machine.js'
import { LoadPool, ServerGroup } from './lib/pool.js'
import { combine } from './lib/combine.js'
import { headlineRatios } from './lib/headline.js'
import { renderTable, type ScenarioResults } from './lib/report.js'
import { renderSvg } from './lib/svg.js'
import { connect } from './scenarios/connect.js'
import { deflate } from './scenarios/deflate.js'
import { fanout } from './scenarios/fanout.js'
import { memory } from './scenarios/memory.js'
import { reqres } from './scenarios/reqres.js'
import { seed } from './scenarios/seed.js'
import { scale } from './scenarios/scale.js'
import type { Counts, Scenario, Timeouts, VariantResult } from './scenarios/types.js'
import { BASELINE, variants as allVariants, type Variant } from './variants.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const RESULTS = path.join(HERE, 'results')

const QUICK: Counts = {
  fanoutSubscribers: 1000,
  fanoutPublications: 100,
  fanoutWarmup: 10,
  fanoutPacedPublications: 30,
  fanoutPacedRate: 50_000,
  deflateSubscribers: 400,
  deflatePublications: 30,
  deflateWarmup: 5,
  deflatePadLength: 2000,
  memoryConnections: 1500,
  reqresClients: 100,
  reqresRounds: 200,
  connectConnections: 500,
  connectWarmup: 300,
  connectConcurrency: 50,
  seedBroadcastClients: 100,
  seedBroadcasts: 40,
  seedBroadcastIntervalMs: 10,
  seedInboundClients: 100,
  seedInboundMessages: 1000,
  seedInboundWindow: 100,
  // Replaced by what the fd limit allows unless --set (see main).
  scaleConnections: 0,
  scalePublications: 20,
  scaleIdleMs: 30_000
}

const FULL: Counts = {
  ...QUICK,
  fanoutSubscribers: 10_000,
  fanoutPublications: 2000,
  fanoutWarmup: 50,
  fanoutPacedPublications: 300,
  deflateSubscribers: 1000,
  deflatePublications: 500,
  memoryConnections: 10_000,
  reqresRounds: 2000,
  connectConnections: 2000,
  seedBroadcasts: 200
}

const scenarios: Scenario[] = [memory, connect, reqres, seed, fanout, deflate, scale]

function parseCli () {
  const { values } = parseArgs({
    options: {
      full: { type: 'boolean', default: false },
      only: { type: 'string' },
      scenarios: { type: 'string' },
      workers: { type: 'string', default: '2' },
      repeat: { type: 'string', default: '1' },
      set: { type: 'string', multiple: true, default: [] },
      'cpu-prof': { type: 'boolean', default: false },
      multinode: { type: 'boolean', default: false },
      ticker: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    },
    allowPositionals: false
  })
  if (values.help) {
    console.log([
      'npm run bench [-- options]',
      '  --full               full run (10,000 subscribers / idle connections); default is quick mode',
      `  --only a,b           variants to run (${allVariants.map((v) => v.id).join(', ')}); ${BASELINE} is always included`,
      `  --scenarios a,b      scenarios to run (${scenarios.map((s) => s.id).join(', ')}; scale only when named)`,
      '  --workers n          load-generator processes, 1 or 2 (default 2)',
      '  --repeat n           run every scenario n times (order rotated) and report medians (default 1)',
      '  --set key=value      override one count, e.g. --set fanoutPublications=500 (repeatable; keys: see QUICK in bench/run.ts)',
      '  --cpu-prof           write CPU profiles of the server processes to bench/results/profiles/',
      '  --multinode          instead: 2 and 3 nodes on Redis and Redis Cluster beside Socket.IO\'s sharded adapter (needs redis-server, redis-cli)',
      '  --ticker             instead: the ticker (1,000 subscribers, 50 symbols, 200 quotes/s) in JSON, MessagePack, with deltas, compress-once and Socket.IO (--only picks ways, --set tickerSeconds=20)'
    ].join('\n'))
    process.exit(0)
  }
  const pick = <T extends { id: string }>(list: T[], wanted: string | undefined, what: string): T[] => {
    // Scenarios that run only when named (scale) are left out of the default.
    if (wanted === undefined) return list.filter((item) => (item as { explicit?: boolean }).explicit !== true)
    const ids = wanted.split(',').map((s) => s.trim()).filter(Boolean)
    for (const id of ids) if (!list.some((item) => item.id === id)) throw new Error(`unknown ${what} "${id}"`)
    return list.filter((item) => ids.includes(item.id))
  }
  let variants = values.ticker ? allVariants : pick(allVariants, values.only, 'variant')
  if (!variants.some((v) => v.id === BASELINE)) variants = allVariants.filter((v) => v.id === BASELINE || variants.includes(v))
  const workers = Number(values.workers)
  if (workers !== 1 && workers !== 2) throw new Error('--workers must be 1 or 2')
  const repeat = Number(values.repeat)
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 9) throw new Error('--repeat must be an integer from 1 to 9')
  const chosen = pick(scenarios, values.scenarios, 'scenario')
  // A variant no chosen scenario runs is not started (the scale scenario runs four).
  const runsIn = (v: Variant, s: Scenario): boolean => v.id === BASELINE || ((s.variants === undefined || s.variants.includes(v.id)) && (v.scenarios === undefined || v.scenarios.includes(s.id)))
  variants = variants.filter((v) => chosen.some((s) => runsIn(v, s)))
  return {
    mode: values.full ? 'full' as const : 'quick' as const,
    variants,
    scenarios: chosen,
    workers,
    repeat,
    overrides: values.set ?? [],
    cpuProf: values['cpu-prof'],
    multinode: values.multinode,
    ticker: values.ticker,
    only: values.only
  }
}

/** The per-process file-descriptor limit, as `ulimit -n` reports it. */
function fdLimit (): number {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()
    return out === 'unlimited' ? Infinity : Number(out)
  } catch {
    return 1024
  }
}

/** Shrinks connection counts that would not fit under the fd limit of one process. */
function fitToFdLimit (counts: Counts, limit: number, workers: number): string[] {
  const warnings: string[] = []
  const margin = 200
  const keys = ['fanoutSubscribers', 'memoryConnections', 'connectConnections'] as const
  for (const key of keys) {
    // A server holds every connection; a worker holds its share of them.
    const fit = Math.min(limit - margin, (limit - margin) * workers)
    if (counts[key] > fit) {
      warnings.push(`${key} lowered from ${counts[key]} to ${fit}: ulimit -n is ${limit} (raise it with \`ulimit -n 20000\` for the full run)`)
      counts[key] = fit
    }
  }
  return warnings
}

/**
 * The servers load the built package (dist/), as an app does: run from the TypeScript
 * source through tsx, every closure would also pay tsx's keepNames helper, a cost no
 * user has. Built here when dist/ is missing or older than lib/.
 */
function ensureBuilt (log: (message: string) => void): void {
  const root = path.join(HERE, '..')
  const newest = (dir: string): number => readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((latest, entry) => Math.max(latest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs), 0)
  let built = 0
  try {
    built = statSync(path.join(root, 'dist', 'index.js')).mtimeMs
  } catch {}
  if (built >= newest(path.join(root, 'lib'))) return
  log('building dist/ (npm run build): the servers load the built package')
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
}

/** Above this share of the machine used by other processes, a run is flagged as noisy. */
const NOISY = 0.1

/** CPU µs used so far by the orchestrator, the variant's servers and the load generators. */
async function ownCpu (server: ServerGroup, load: LoadPool): Promise<number | null> {
  try {
    const [s, l] = await Promise.all([server.stats(), load.cpuMicros()])
    return s.cpuMicros + l + cpuMicros()
  } catch {
    return null
  }
}

async function main (): Promise<number> {
  const cli = parseCli()
  if (cli.ticker) {
    const { runTicker, TICKER_DEFAULTS } = await import('./ticker/run.js')
    const counts = { ...TICKER_DEFAULTS }
    for (const pair of cli.overrides) {
      const [key, value] = pair.split('=')
      if (key in counts) (counts as Record<string, number>)[key] = Number(value)
    }
    const rows = await runTicker(counts, cli.only?.split(','))
    writeFileSync(path.join(RESULTS, 'ticker.json'), JSON.stringify({ counts, rows }, null, 2) + '\n')
    return 0
  }
  if (cli.multinode) {
    ensureBuilt((message) => process.stderr.write(`[bench] ${message}\n`))
    const { runMultinode, MULTINODE_QUICK, MULTINODE_FULL } = await import('./multinode/run.js')
    await runMultinode(cli.mode === 'full' ? MULTINODE_FULL : MULTINODE_QUICK, path.join(RESULTS, 'multinode.json'))
    return 0
  }
  const startedAt = Date.now()
  const counts: Counts = { ...(cli.mode === 'full' ? FULL : QUICK) }
  for (const override of cli.overrides) {
    const [key, value] = override.split('=')
    if (!(key in counts) || !(Number(value) > 0)) throw new Error(`--set ${override}: expected <count>=<positive number>, counts are ${Object.keys(counts).join(', ')}`)
    counts[key as keyof Counts] = Number(value)
  }
  const limit = fdLimit()
  const warnings = fitToFdLimit(counts, limit, cli.workers)
  const scaling = cli.scenarios.some((s) => s.id === 'scale')
  if (scaling && !cli.overrides.some((o) => o.startsWith('scaleConnections='))) {
    // As many as one server process may hold: its fd limit, less a margin for its own files.
    counts.scaleConnections = Math.max(100, Math.min(limit, 1_000_000) - 300)
    process.stderr.write(`[bench] scale: ${counts.scaleConnections} connections, from ulimit -n ${limit} less 300 (--set scaleConnections=N to choose)\n`)
  } else if (counts.scaleConnections > limit - 200) {
    warnings.push(`scaleConnections lowered from ${counts.scaleConnections} to ${limit - 200}: ulimit -n is ${limit}`)
    counts.scaleConnections = limit - 200
  }
  const timeouts: Timeouts = cli.mode === 'full' ? { openMs: 120_000, phaseMs: 300_000 } : { openMs: 20_000, phaseMs: 20_000 }
  // Generous for quick mode (about a minute when idle): a shared machine can double it.
  // The scale scenario adds its own: about two minutes per variant at 20,000 connections.
  const hardLimitMs = ((cli.mode === 'full' ? 90 * 60_000 : 240_000) + (scaling ? 15 * 60_000 : 0)) * cli.repeat
  const hardTimer = setTimeout(() => {
    console.error(`\nbench: hard time limit of ${hardLimitMs / 1000} s reached; killing every child process`)
    killAllChildren()
    process.exit(1)
  }, hardLimitMs)
  hardTimer.unref()

  const log = (message: string) => process.stderr.write(`[bench ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)}s] ${message}\n`)
  for (const warning of warnings) log(`warning: ${warning}`)
  ensureBuilt(log)
  log(`${cli.mode} mode: ${cli.variants.length} variants × ${cli.scenarios.length} scenarios${cli.repeat > 1 ? ` × ${cli.repeat} runs` : ''}, ${cli.workers} load-generator process(es), ${os.cpus().length} cores, node ${process.version}`)

  // Children: every server process and the load generators, started together.
  const lifetime = hardLimitMs + 30_000
  const load = new LoadPool(Array.from({ length: cli.workers }, (_, i) =>
    new Child(`loadgen-${i + 1}`, path.join(HERE, 'load', 'worker.ts'), { maxLifetimeMs: lifetime })))
  const startGroup = (variant: Variant): ServerGroup => {
    const flags = ['--expose-gc']
    if (cli.cpuProf) flags.push('--cpu-prof', `--cpu-prof-dir=${path.join(RESULTS, 'profiles', variant.id)}`)
    const nodes = Array.from({ length: variant.nodes }, (_, i) =>
      new Child(`server ${variant.id}#${i + 1}`, path.join(HERE, 'servers', variant.server), { maxLifetimeMs: lifetime, nodeFlags: flags }))
    return new ServerGroup(variant, nodes)
  }
  const groups = new Map<string, ServerGroup>(cli.variants.map((v) => [v.id, startGroup(v)]))
  await Promise.all([load.ready(30_000), ...[...groups.values()].map((g) => g.ready(30_000))])
  log('servers and load generators ready')

  const results: Record<string, ScenarioResults> = {}
  const runOrder: Variant[] = [...cli.variants].sort((a, b) => Number(b.id === BASELINE) - Number(a.id === BASELINE))
  let failures = 0
  for (const scenario of cli.scenarios) {
    const takesPart = (v: Variant) => v.id === BASELINE || ((scenario.variants === undefined || scenario.variants.includes(v.id)) && (v.scenarios === undefined || v.scenarios.includes(scenario.id)))
    const runs = new Map<string, VariantResult[]>(cli.variants.filter(takesPart).map((v) => [v.id, []]))
    for (let repeat = 0; repeat < cli.repeat; repeat++) {
      // The baseline goes first in the first round; later rounds rotate every variant,
      // baseline included, so no variant always runs right after the same one.
      const taking = runOrder.filter(takesPart)
      const shift = repeat % taking.length
      const order = [...taking.slice(shift), ...taking.slice(0, shift)]
      for (const variant of order) {
        let server = groups.get(variant.id) as ServerGroup
        const t0 = Date.now()
        if (scenario.freshServer === true && server.used) {
          // This scenario needs a server that has served nothing yet (RSS never shrinks back).
          await server.stop()
          server = startGroup(variant)
          groups.set(variant.id, server)
          await server.ready(30_000)
        }
        server.used = true
        const result = await runOnce(scenario, variant, server, runs.get(BASELINE)?.at(-1))
        if (result.error !== undefined) failures++
        runs.get(variant.id)?.push(result)
        log(`${scenario.id.padEnd(8)} ${variant.id.padEnd(18)} ${((Date.now() - t0) / 1000).toFixed(1)} s${result.error === undefined ? '' : `  FAILED: ${result.error.split('\n')[0]}`}`)
      }
    }
    results[scenario.id] = Object.fromEntries([...runs].map(([id, list]) => [id, combine(list, scenario)]))
  }

  /** One scenario against one variant, with the machine's other load measured around it. */
  async function runOnce (scenario: Scenario, variant: Variant, server: ServerGroup, baseline: VariantResult | undefined): Promise<VariantResult> {
    const own0 = await ownCpu(server, load)
    const machine0 = machineCpu()
    let result: VariantResult
    try {
      result = await scenario.run({ mode: cli.mode, counts, timeouts, variant, server, load, baseline, log })
    } catch (err) {
      result = { metrics: {}, loadUtilization: null, serverUtilization: null, loadSaturated: false, complete: false, notes: [], error: (err as Error)?.message ?? String(err) }
    }
    const machine1 = machineCpu()
    const own1 = await ownCpu(server, load)
    const other = own0 === null || own1 === null ? undefined : otherCpuShare(machine0, machine1, own1 - own0)
    if (other !== undefined) {
      result.otherCpuShare = Math.round(other * 100) / 100
    }
    // Whatever happened, leave no client connection behind for the next run.
    try {
      await load.closeAll()
      if (!await server.waitConnections(0, 10_000)) result.notes.push('the server still counted connections 10 s after the clients closed')
    } catch (err) {
      result.notes.push(`cleanup: ${(err as Error).message}`)
    }
    return result
  }

  await Promise.all([load.stop(), ...[...groups.values()].map((g) => g.stop())])
  killAllChildren()
  clearTimeout(hardTimer)
  const elapsedS = (Date.now() - startedAt) / 1000

  // ------------------------------------------------------------------ report
  const saturated: string[] = []
  for (const scenario of cli.scenarios) {
    for (const variant of cli.variants) {
      const r = results[scenario.id]?.[variant.id]
      if (r?.loadSaturated) saturated.push(`${scenario.id}/${variant.id} (${Math.round(Math.max(...(r.loadUtilization ?? [0])) * 100)}%)`)
    }
  }
  const others = cli.scenarios.flatMap((s) => cli.variants.map((v) => results[s.id]?.[v.id]?.otherCpuShare)).filter((x): x is number => x !== undefined)
  const otherCpu = others.length === 0 ? null : { mean: Math.round(others.reduce((a, b) => a + b, 0) / others.length * 100) / 100, max: Math.max(...others) }
  const meta = {
    date: new Date(startedAt).toISOString(),
    mode: cli.mode,
    /** The variant every ratio is to. */
    baseline: BASELINE,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    fdLimit: limit,
    loadGenerators: cli.workers,
    repeat: cli.repeat,
    elapsedSeconds: Math.round(elapsedS * 10) / 10,
    counts,
    warnings,
    loadGeneratorSaturated: saturated,
    /** Share of the machine's CPU used by processes outside the bench, per scenario run (Linux only). */
    otherCpu
  }
  const headline = headlineRatios(results, cli.variants)

  const out: string[] = []
  out.push('')
  out.push(`fastify-realtime benchmark — ${cli.mode} mode — node ${process.version}, ${meta.cores} cores (${meta.cpu}), ${meta.loadGenerators} load-generator process(es), ${elapsedS.toFixed(1)} s`)
  out.push(`ratios (×ws) are to raw ws true frame-once (${BASELINE}: one Buffer per publication, header included, written to each net.Socket); ×fws is to the @fastify/websocket loop. "srv CPU" / "loadgen CPU": share of one core used during the measured phase; SAT = load generator ≥ 90% (figure may be capped by the client side).`)
  for (const scenario of cli.scenarios) {
    out.push('')
    out.push(renderTable(scenario, scenario.title(counts), results[scenario.id], cli.variants))
  }
  out.push('')
  out.push('Headline ratios (plugin vs the others):')
  for (const line of headline.lines) out.push(`  ${line}`)
  out.push('')
  out.push(saturated.length === 0
    ? 'Load generator saturated: no (every load-generator process stayed under 90% of a core)'
    : `Load generator saturated: yes, in ${saturated.join(', ')} — those figures are a lower bound for the server`)
  if (otherCpu !== null) {
    const busy = cli.scenarios.flatMap((sc) => cli.variants.map((v) => [`${sc.id}/${v.id}`, results[sc.id]?.[v.id]?.otherCpuShare] as const))
      .filter(([, share]) => share !== undefined && share >= NOISY)
    if (busy.length === 0) {
      out.push(`Machine otherwise idle: other processes used at most ${Math.round(otherCpu.max * 100)}% of the CPU during any scenario`)
    } else {
      const where = busy.length === others.length ? 'every scenario' : busy.slice(0, 8).map(([id, share]) => `${id} ${Math.round((share ?? 0) * 100)}%`).join(', ') + (busy.length > 8 ? ', …' : '')
      out.push(`Machine NOT idle: other processes used ${Math.round(otherCpu.mean * 100)}% of the CPU on average (up to ${Math.round(otherCpu.max * 100)}%), ≥ ${NOISY * 100}% in ${where}; expect noisy figures and rerun on a quiet machine`)
    }
  }
  for (const warning of warnings) out.push(`warning: ${warning}`)
  console.log(out.join('\n'))

  mkdirSync(RESULTS, { recursive: true })
  const json = {
    meta,
    variants: cli.variants.map((v) => ({ id: v.id, label: v.label, description: v.description, nodes: v.nodes })),
    scenarios: Object.fromEntries(cli.scenarios.map((s) => [s.id, {
      title: s.title(counts),
      description: s.description,
      columns: s.columns,
      results: results[s.id]
    }])),
    ratios: headline.ratios
  }
  if (cli.scenarios.every((s) => s.explicit === true)) {
    // A scale run alone keeps its own file: the quick or full figures of latest.json stay.
    writeFileSync(path.join(RESULTS, 'scale.json'), JSON.stringify(json, null, 2) + '\n')
    console.log(`\nwrote ${path.relative(process.cwd(), path.join(RESULTS, 'scale.json'))}`)
    return failures === 0 ? 0 : 1
  }
  writeFileSync(path.join(RESULTS, 'latest.json'), JSON.stringify(json, null, 2) + '\n')
  const subtitle = `${cli.mode} mode · node ${process.version} · ${meta.cores} cores · ${meta.date.slice(0, 10)} · servers and load generators in separate processes on 127.0.0.1`
  const footer = [
    ...cli.scenarios.map((s) => s.title(counts)),
    saturated.length === 0 ? 'Load generator not saturated in any scenario.' : `Load generator saturated in: ${saturated.join(', ')}.`
  ]
  writeFileSync(path.join(RESULTS, 'latest.svg'), renderSvg(cli.scenarios, results, cli.variants, subtitle, footer))
  console.log(`\nwrote ${path.relative(process.cwd(), path.join(RESULTS, 'latest.json'))} and ${path.relative(process.cwd(), path.join(RESULTS, 'latest.svg'))}`)
  if (cli.cpuProf) console.log(`CPU profiles: ${path.relative(process.cwd(), path.join(RESULTS, 'profiles'))}/<variant>/`)
  return failures === 0 ? 0 : 1
}

// Nothing may outlive the run: kill every child on any way out.
process.on('exit', () => killAllChildren())
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\nbench: ${signal}; stopping ${liveChildren()} child process(es)`)
    killAllChildren()
    process.exit(130)
  })
}
process.on('uncaughtException', (err) => {
  console.error('bench: uncaught exception:', err)
  killAllChildren()
  process.exit(1)
})
process.on('unhandledRejection', (err) => {
  console.error('bench: unhandled rejection:', err)
  killAllChildren()
  process.exit(1)
})

main().then((code) => { process.exitCode = code }, (err) => {
  console.error('bench failed:', err)
  killAllChildren()
  process.exitCode = 1
})
