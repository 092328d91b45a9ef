// What a README program gets instead of `fastify` when scripts/readme-run.ts runs it: the
// real Fastify, with every log line kept (a line at warn or above fails the run) and
// `listen()` on an ephemeral port of 127.0.0.1, so a snippet's `listen({ port: 3000 })`
// serves a test and never a fixed port. The apps made are kept for the run to drive and close.
import RealFastify, { type FastifyInstance, type FastifyListenOptions } from 'fastify'
import { Writable } from 'node:stream'

export const apps: FastifyInstance[] = []
export const logs: Array<Record<string, unknown>> = []

const stream = new Writable({
  write (chunk, _encoding, done) {
    for (const line of String(chunk).split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line))
    done()
  }
})

function Fastify (options: Record<string, unknown> = {}): FastifyInstance {
  const app = RealFastify({ ...options, logger: { level: 'info', stream } }) as unknown as FastifyInstance
  const listen = app.listen.bind(app) as (options: FastifyListenOptions) => Promise<string>
  ;(app as unknown as { listen: unknown }).listen = async (options: FastifyListenOptions = {}) => await listen({ ...options, port: 0, host: '127.0.0.1' })
  apps.push(app)
  return app
}

export default Fastify as unknown as typeof RealFastify

/** The ws:// URL of an app that listens. */
export function urlOf (app: FastifyInstance, path = '/ws'): string {
  const address = app.server.address() as { port: number }
  return `ws://127.0.0.1:${address.port}${path}`
}
