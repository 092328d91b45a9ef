// Several runs of one scenario (`--repeat`) folded into one result.

import type { Scenario, VariantResult } from '../scenarios/types.js'
import { percentileOf } from './histogram.js'
import { formatNumber } from './report.js'

/**
 * Several runs of one scenario against one variant as one result: the median of
 * every figure, the most loaded load generator, and every note once.
 */
export function combine (list: VariantResult[], scenario: Scenario): VariantResult {
  const ok = list.filter((r) => r.error === undefined)
  if (ok.length === 0) return list[0]
  if (list.length === 1) return list[0]
  const metrics: Record<string, number> = {}
  const spread: Record<string, [number, number]> = {}
  for (const key of Object.keys(ok[0].metrics)) {
    const values = ok.map((r) => r.metrics[key]).filter((v) => Number.isFinite(v))
    if (values.length === 0) continue
    metrics[key] = percentileOf(values, 50)
    spread[key] = [Math.min(...values), Math.max(...values)]
  }
  const busiest = ok.reduce((a, b) => Math.max(...(b.loadUtilization ?? [0])) > Math.max(...(a.loadUtilization ?? [0])) ? b : a)
  const main = scenario.columns[0]
  const notes = [...new Set(list.flatMap((r) => r.notes))]
  const range = spread[main.key]
  if (range !== undefined) notes.unshift(`median of ${ok.length} runs; ${main.label} ranged ${formatNumber(range[0], main.digits)}–${formatNumber(range[1], main.digits)}`)
  if (ok.length < list.length) notes.push(`${list.length - ok.length} of ${list.length} runs failed: ${list.find((r) => r.error !== undefined)?.error}`)
  const others = ok.map((r) => r.otherCpuShare).filter((x): x is number => x !== undefined)
  return {
    metrics,
    spread,
    loadUtilization: busiest.loadUtilization,
    serverUtilization: percentileOf(ok.map((r) => r.serverUtilization ?? NaN).filter(Number.isFinite), 50) ?? null,
    loadSaturated: ok.some((r) => r.loadSaturated),
    complete: ok.length === list.length && ok.every((r) => r.complete),
    notes,
    otherCpuShare: others.length === 0 ? undefined : Math.max(...others)
  }
}
