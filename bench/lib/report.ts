// Turns results into the text tables printed by `npm run bench`.

import type { Column, Scenario, VariantResult } from '../scenarios/types.js'
import type { Variant } from '../variants.js'

export type ScenarioResults = Record<string, VariantResult>

export function formatNumber (value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return '—'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function ratio (results: ScenarioResults, column: Column, variantId: string, to: string): number | undefined {
  const value = results[variantId]?.metrics[column.key]
  const base = results[to]?.metrics[column.key]
  if (value === undefined || base === undefined || !Number.isFinite(value) || !Number.isFinite(base) || base === 0) return undefined
  return value / base
}

const SHORT: Record<string, string> = { 'ws-true-frame-once': 'ws', 'ws-send-once': 'send', 'fastify-websocket': 'fws' }

/** A text table: one row per variant, each figure followed by its ratio columns. */
export function renderTable (scenario: Scenario, title: string, results: ScenarioResults, variants: Variant[]): string {
  const header = ['variant']
  for (const column of scenario.columns) {
    header.push(column.label)
    for (const to of column.ratioTo ?? []) header.push(`×${SHORT[to] ?? to}`)
  }
  header.push('srv CPU', 'loadgen CPU')
  const rows: string[][] = []
  for (const variant of variants) {
    const result = results[variant.id]
    if (result === undefined) continue
    if (result.error !== undefined) {
      rows.push([variant.label, `failed: ${result.error.split('\n')[0].slice(0, 90)}`])
      continue
    }
    const row = [variant.label + (result.complete ? '' : ' (incomplete)')]
    for (const column of scenario.columns) {
      row.push(formatNumber(result.metrics[column.key], column.digits))
      for (const to of column.ratioTo ?? []) {
        const r = ratio(results, column, variant.id, to)
        row.push(r === undefined ? '—' : `${r.toFixed(2)}×`)
      }
    }
    row.push(percent(result.serverUtilization))
    row.push(result.loadUtilization === null ? '—' : result.loadUtilization.map((u) => Math.round(u * 100)).join('+') + '%' + (result.loadSaturated ? ' SAT' : ''))
    rows.push(row)
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r.length === 2 && i === 1 ? 0 : (r[i] ?? '').length))))
  const line = (cells: string[]) => {
    if (cells.length === 2 && cells[1].startsWith('failed:')) return `  ${cells[0].padEnd(widths[0])}  ${cells[1]}`
    return '  ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  }
  const out = [title, line(header), '  ' + widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)]
  // A note every variant shares is printed once.
  const present = variants.filter((v) => results[v.id] !== undefined)
  const shared = (note: string) => present.length > 1 && present.every((v) => results[v.id].notes.includes(note))
  const notes: string[] = [...new Set(present.flatMap((v) => results[v.id].notes.filter(shared)))].map((note) => `  note: ${note}`)
  for (const variant of present) {
    for (const note of results[variant.id].notes) if (!shared(note)) notes.push(`  note (${variant.label}): ${note}`)
  }
  return [...out, ...notes].join('\n')
}

function percent (value: number | null): string {
  return value === null || !Number.isFinite(value) ? '—' : `${Math.round(value * 100)}%`
}
