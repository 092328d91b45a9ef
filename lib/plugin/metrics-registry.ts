// The registry the metrics option takes, typed by its shape: declarations that name it
// (app.realtime.metrics, the options) must not import prom-client, an optional peer.

/**
 * A prom-client Registry, as far as the plugin uses one. Typed here, not imported, so
 * that an app without prom-client (an optional peer) still type-checks our declarations.
 */
export interface MetricsRegistry {
  registerMetric: (metric: any) => void
  removeSingleMetric: (name: string) => void
  getSingleMetric: (name: string) => unknown
  /** The metrics in Prometheus' text format, to serve at `GET /metrics`. */
  metrics: () => Promise<string>
  /** The content type of `metrics()`. */
  readonly contentType: string
}
