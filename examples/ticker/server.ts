// Runs the ticker example: `npm run example:ticker` (HOST and PORT may be set in the
// environment; TICK_MS sets the ms between two quotes of a symbol). In-memory defaults.
import { buildTicker } from './app.js'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 3000)
const interval = process.env.TICK_MS === undefined ? undefined : Number(process.env.TICK_MS)

const app = await buildTicker({ logger: true, interval })
try {
  await app.listen({ host, port })
} catch (err) {
  app.log.error(err)
  process.exit(1)
}
const address = app.server.address()
const actualPort = typeof address === 'object' && address !== null ? address.port : port
console.log(`Ticker example running at http://${host.includes(':') ? `[${host}]` : host}:${actualPort}/`)

let closing = false
function onSignal (signal: NodeJS.Signals): void {
  if (closing) process.exit(1)
  closing = true
  app.log.info(`${signal} received: closing`)
  app.close().then(() => process.exit(0), (err: unknown) => {
    app.log.error(err)
    process.exit(1)
  })
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
