// Runs the chat example: `npm start` (HOST and PORT may be set in the environment).
import { buildChat } from './app.js'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 3000)

const app = await buildChat({ logger: true })

try {
  await app.listen({ host, port })
} catch (err) {
  app.log.error(err)
  process.exit(1)
}

const address = app.server.address()
const actualPort = typeof address === 'object' && address !== null ? address.port : port
const shownHost = host.includes(':') ? `[${host}]` : host
console.log(`Chat example running at http://${shownHost}:${actualPort}/`)

// Graceful shutdown: app.close() tells every client "server restarting" (1012) and
// waits for them to go. A second signal while that is under way exits at once.
let closing = false
function onSignal (signal: NodeJS.Signals): void {
  if (closing) {
    app.log.warn(`${signal} again: exiting now`)
    process.exit(1)
  }
  closing = true
  app.log.info(`${signal} received: closing`)
  app.close().then(
    () => process.exit(0),
    (err: unknown) => {
      app.log.error(err)
      process.exit(1)
    }
  )
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
