// A bar chart of the charted figures, as a self-contained SVG written by hand (no
// dependency), sized for a README.

import type { Scenario } from '../scenarios/types.js'
import type { Variant } from '../variants.js'
import { formatNumber, type ScenarioResults } from './report.js'

interface Panel {
  title: string
  better: 'higher' | 'lower'
  digits: number
  bars: Array<{ variant: Variant, value: number }>
}

const WIDTH = 960
const COLUMNS = 2
const PANEL_W = (WIDTH - 40) / COLUMNS
const LABEL_W = 170
const BAR_H = 16
const BAR_GAP = 6
const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"'

export function renderSvg (scenarios: Scenario[], results: Record<string, ScenarioResults>, variants: Variant[], subtitle: string, footer: string[]): string {
  const panels: Panel[] = []
  for (const scenario of scenarios) {
    for (const column of scenario.columns) {
      if (column.chart === undefined) continue
      const bars = variants
        .map((variant) => ({ variant, value: results[scenario.id]?.[variant.id]?.metrics[column.key] }))
        .filter((b): b is { variant: Variant, value: number } => b.value !== undefined && Number.isFinite(b.value))
      if (bars.length > 0) panels.push({ title: column.chart, better: column.better, digits: column.digits, bars })
    }
  }
  const panelH = 34 + variants.length * (BAR_H + BAR_GAP) + 12
  const rows = Math.ceil(panels.length / COLUMNS)
  const top = 64
  const height = top + rows * panelH + 18 + footer.length * 16
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT} font-size="12">`)
  parts.push(`<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`)
  parts.push('<text x="20" y="28" font-size="18" font-weight="600" fill="#111">fastify-realtime benchmark</text>')
  parts.push(`<text x="20" y="48" fill="#555">${escape(subtitle)}</text>`)
  panels.forEach((panel, i) => {
    const x = 20 + (i % COLUMNS) * PANEL_W
    const y = top + Math.floor(i / COLUMNS) * panelH
    parts.push(renderPanel(panel, x, y))
  })
  footer.forEach((line, i) => {
    parts.push(`<text x="20" y="${top + rows * panelH + 10 + i * 16}" fill="#666" font-size="11">${escape(line)}</text>`)
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

function renderPanel (panel: Panel, x: number, y: number): string {
  const parts: string[] = []
  const barMax = PANEL_W - LABEL_W - 90
  const max = Math.max(...panel.bars.map((b) => b.value), 0)
  parts.push(`<g transform="translate(${x.toFixed(1)},${y})">`)
  parts.push(`<text x="0" y="16" font-size="13" font-weight="600" fill="#222">${escape(panel.title)}<tspan font-size="11" font-weight="400" fill="#888"> · ${panel.better} is better</tspan></text>`)
  panel.bars.forEach((bar, i) => {
    const by = 28 + i * (BAR_H + BAR_GAP)
    const w = max > 0 ? Math.max(1, (bar.value / max) * barMax) : 1
    parts.push(`<text x="${LABEL_W - 8}" y="${by + BAR_H - 4}" text-anchor="end" fill="#333">${escape(bar.variant.label)}</text>`)
    parts.push(`<rect x="${LABEL_W}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H}" rx="2" fill="${bar.variant.color}"/>`)
    parts.push(`<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${by + BAR_H - 4}" fill="#333">${escape(formatNumber(bar.value, panel.digits))}</text>`)
  })
  parts.push('</g>')
  return parts.join('\n')
}

function escape (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}
