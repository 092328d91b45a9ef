// Summarises V8 CPU profiles (`npm run bench -- --cpu-prof` writes them to
// bench/results/profiles/<variant>/): the functions with the most self time, with
// their share of the busy (non-idle) samples, and the same grouped by package (node_modules name,
// "node:" internals, this project's lib/, V8/GC/native).
//
//   node --import tsx bench/profile-top.ts bench/results/profiles/plugin/CPU.*.0.001.cpuprofile [--top 25]
//
// (Each server writes two profiles: thread 0 is the main thread; the other is tsx's
// module-loader worker.)

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, hitCount?: number }
interface Profile { nodes: ProfileNode[], samples?: number[], timeDeltas?: number[] }

/** Self time per node id in µs, from the sample list and its time deltas (hitCount ignores sample spacing). */
function selfTimes (profile: Profile): Map<number, number> {
  const times = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  // timeDeltas[i] is the time before sample i; the time a sample stands for is the gap to the next.
  for (let i = 0; i < samples.length; i++) {
    const dt = deltas[i + 1] ?? 0
    times.set(samples[i], (times.get(samples[i]) ?? 0) + dt)
  }
  return times
}

function where (frame: CallFrame): string {
  const url = frame.url
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)'
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0]
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  const lib = url.indexOf('/lib/')
  if (lib >= 0 && !url.includes('/bench/')) return 'fastify-realtime lib/'
  return url.replace(/^file:\/\//, '').split('/').slice(-2).join('/')
}

function label (frame: CallFrame): string {
  const file = frame.url === '' ? '' : ` ${frame.url.replace(/^file:\/\//, '').split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`
  return `${frame.functionName === '' ? '(anonymous)' : frame.functionName}${file}`
}

function main (): void {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true })
  if (positionals.length === 0) {
    console.error('usage: node --import tsx bench/profile-top.ts <file.cpuprofile>... [--top n]')
    process.exitCode = 1
    return
  }
  const byFunction = new Map<string, number>()
  const byPackage = new Map<string, number>()
  let total = 0
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
    for (const [id, us] of selfTimes(profile)) {
      const node = nodes.get(id)
      if (node === undefined) continue
      if (node.callFrame.functionName === '(idle)') continue
      total += us
      const key = label(node.callFrame)
      byFunction.set(key, (byFunction.get(key) ?? 0) + us)
      const pkg = where(node.callFrame)
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us)
    }
  }
  const print = (title: string, map: Map<string, number>, n: number) => {
    console.log(`\n${title}`)
    const rows = [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
    for (const [key, us] of rows) console.log(`  ${(us / total * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`)
  }
  console.log(`${positionals.length} profile(s), ${(total / 1000).toFixed(0)} ms busy (idle samples left out)`)
  print('Self time by function', byFunction, Number(values.top))
  print('Self time by package', byPackage, 15)
}

main()
