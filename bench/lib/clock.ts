// Clocks shared by every bench process.
//
// process.hrtime() and performance.now() start from a different origin in each
// process, so a timestamp taken in the server cannot be compared with one taken in a
// load generator. performance.timeOrigin + performance.now() is wall-clock time
// (like Date.now()) with sub-millisecond resolution, and is what we embed in
// messages and compare across processes.

/** Wall-clock milliseconds, fractional. Comparable across processes on one machine. */
export function wallNow (): number {
  return performance.timeOrigin + performance.now()
}

/** Total CPU microseconds (user + system) used by this process since `since`. */
export function cpuMicros (since?: NodeJS.CpuUsage): number {
  const usage = process.cpuUsage(since)
  return usage.user + usage.system
}

/** Resolves after `ms`; the timer does not keep the process alive on its own. */
export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
