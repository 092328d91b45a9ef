// The headline lines at the end of `npm run bench`: the plugin's figures against the
// targets of issue 16, and the same ratios for the JSON report.

import { BASELINE, type Variant } from '../variants.js'
import { ratio, type ScenarioResults } from './report.js'

/** The plugin's figures against the targets of issue 16 (ratios to the true frame-once baseline unless said). */
export function headlineRatios (results: Record<string, ScenarioResults>, variants: Variant[]) {
  const lines: string[] = []
  const ratios: Record<string, number | undefined> = {}
  const get = (scenario: string, key: string, variant: string) => results[scenario]?.[variant]?.metrics[key]
  const r = (scenario: string, key: string, variant: string, to: string) => ratio(results[scenario] ?? {}, { key } as never, variant, to)
  const fmt = (v: number | undefined) => (v === undefined ? '—' : `${v.toFixed(2)}×`)
  if (results.fanout !== undefined) {
    ratios.fanoutDeliveriesPluginVsWs = r('fanout', 'deliveriesPerSec', 'plugin', BASELINE)
    ratios.fanoutCpuPerDeliveryPluginVsWs = r('fanout', 'cpuPerDeliveryUs', 'plugin', BASELINE)
    ratios.fanoutUserCpuPerDeliveryPluginVsWs = r('fanout', 'userCpuPerDeliveryUs', 'plugin', BASELINE)
    ratios.fanoutPacedP99PluginVsWs = r('fanout', 'pacedP99Ms', 'plugin', BASELINE)
    lines.push(`fan-out deliveries/s, plugin / ws true frame-once: ${fmt(ratios.fanoutDeliveriesPluginVsWs)} (target ≥ 0.90×)`)
    lines.push(`fan-out server CPU per delivery, plugin / ws true frame-once: ${fmt(ratios.fanoutCpuPerDeliveryPluginVsWs)} (target ≤ 1.10×)`)
    lines.push(`fan-out server user-space CPU per delivery, plugin / ws true frame-once: ${fmt(ratios.fanoutUserCpuPerDeliveryPluginVsWs)} (target ≤ 1.40×)`)
    lines.push(`fan-out paced p99, plugin / ws true frame-once: ${fmt(ratios.fanoutPacedP99PluginVsWs)} (target ≤ 1.05×)`)
    ratios.fanoutDeliveriesMetricsVsPlugin = r('fanout', 'deliveriesPerSec', 'plugin-metrics', 'plugin')
    ratios.fanoutCpuPerDeliveryMetricsVsPlugin = r('fanout', 'cpuPerDeliveryUs', 'plugin-metrics', 'plugin')
    lines.push(`fan-out with metrics: true / without: deliveries/s ${fmt(ratios.fanoutDeliveriesMetricsVsPlugin)}, CPU per delivery ${fmt(ratios.fanoutCpuPerDeliveryMetricsVsPlugin)} (target: within 5 %)`)
  }
  if (results.memory !== undefined) {
    const parts = variants.filter((v) => results.memory[v.id] !== undefined).map((v) => {
      const rss = get('memory', 'rssPerConnKB', v.id)
      const heap = get('memory', 'heapPerConnKB', v.id)
      ratios[`memoryRssPerConn:${v.id}`] = rss
      ratios[`memoryHeapPerConn:${v.id}`] = heap
      return `${v.label} ${rss === undefined ? '—' : rss.toFixed(1)}/${heap === undefined ? '—' : heap.toFixed(1)}`
    })
    ratios.memoryRssPluginVsWs = r('memory', 'rssPerConnKB', 'plugin', BASELINE)
    lines.push(`RSS/heap KiB per idle subscribed connection: ${parts.join(', ')} (plugin targets ≤ 7.5/4.5 KiB at 10,000 connections)`)
  }
  if (results.connect !== undefined) {
    ratios.connectPluginVsWs = r('connect', 'connectionsPerSec', 'plugin', BASELINE)
    ratios.connectPluginVsFastifyWebsocket = r('connect', 'connectionsPerSec', 'plugin', 'fastify-websocket')
    lines.push(`connections/s, plugin / @fastify/websocket loop: ${fmt(ratios.connectPluginVsFastifyWebsocket)} (target ≥ 1.00×; plugin / ws: ${fmt(ratios.connectPluginVsWs)})`)
  }
  if (results.reqres !== undefined) {
    ratios.reqresPluginVsFastifyWebsocket = r('reqres', 'roundTripsPerSec', 'plugin', 'fastify-websocket')
    ratios.reqresPluginVsWs = r('reqres', 'roundTripsPerSec', 'plugin', BASELINE)
    lines.push(`request/response round trips/s, plugin / @fastify/websocket loop: ${fmt(ratios.reqresPluginVsFastifyWebsocket)} (target ≥ 1.00×; plugin / ws: ${fmt(ratios.reqresPluginVsWs)})`)
    ratios.reqresMetricsVsPlugin = r('reqres', 'roundTripsPerSec', 'plugin-metrics', 'plugin')
    ratios.reqresCpuMetricsVsPlugin = r('reqres', 'cpuPerRoundTripUs', 'plugin-metrics', 'plugin')
    lines.push(`request/response with metrics: true / without: round trips/s ${fmt(ratios.reqresMetricsVsPlugin)}, CPU per round trip ${fmt(ratios.reqresCpuMetricsVsPlugin)} (target: within 5 %)`)
    ratios.reqresCheckedVsUnchecked = r('reqres', 'roundTripsPerSec', 'plugin', 'plugin-unchecked')
    ratios.reqresCpuCheckedVsUnchecked = r('reqres', 'cpuPerRoundTripUs', 'plugin', 'plugin-unchecked')
    lines.push(`request/response with replies checked (the default) / unchecked: round trips/s ${fmt(ratios.reqresCheckedVsUnchecked)}, CPU per round trip ${fmt(ratios.reqresCpuCheckedVsUnchecked)} (target: within 5 %)`)
  }
  if (results.deflate !== undefined) {
    ratios.deflateCpuPluginVsWs = r('deflate', 'cpuPerDeliveryUs', 'plugin', BASELINE)
    ratios.deflateCpuWsSendVsWs = r('deflate', 'cpuPerDeliveryUs', 'ws-send-once', BASELINE)
    lines.push(`compressed fan-out server CPU per delivery, / ws compress-once: plugin (compress once) ${fmt(ratios.deflateCpuPluginVsWs)}, ws.send each (ws per-socket deflate) ${fmt(ratios.deflateCpuWsSendVsWs)}`)
  }
  return { lines, ratios }
}
