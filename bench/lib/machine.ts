// How busy the whole machine is, from /proc/stat (Linux only). Used to tell how much
// CPU processes outside the bench took while a scenario ran: on a shared machine
// that is the first suspect for noisy figures.

import { readFileSync } from 'node:fs'
import os from 'node:os'
import { wallNow } from './clock.js'

export interface CpuSnapshot {
  busy: number
  total: number
  wall: number
}

export function machineCpu (): CpuSnapshot | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    const idle = f[3] + f[4]
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)
    return { busy, total: busy + idle, wall: wallNow() }
  } catch {
    return null
  }
}

/**
 * The share of all cores used by others between two snapshots, given the CPU
 * microseconds the bench's own processes used meanwhile. Stolen time (a busy
 * hypervisor) counts as used by others.
 */
export function otherCpuShare (before: CpuSnapshot | null, after: CpuSnapshot | null, ownCpuMicros: number): number | undefined {
  if (before === null || after === null || after.total <= before.total) return undefined
  const busyShare = (after.busy - before.busy) / (after.total - before.total)
  const ownShare = ownCpuMicros / 1000 / Math.max(1, after.wall - before.wall) / os.cpus().length
  return Math.max(0, busyShare - ownShare)
}
