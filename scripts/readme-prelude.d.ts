// Placeholders that README snippets use without declaring them (scripts/readme-check.ts):
// the app of the example, and the application's own functions that the README does not
// write. A block that names a file (`// server.ts`) gets none of these.
import type { FastifyInstance } from 'fastify'
// Loads the plugin's declarations (`app.realtime`), as any app that registers it does.
import type {} from 'fastify-realtime'

declare global {
  /** The app of a snippet: `const app = Fastify(); await app.register(realtime)`. */
  const app: FastifyInstance
  function isBanned (userId: string | undefined): Promise<boolean>
  function roomIsFull (room: string): Promise<boolean>
  function reportToSentry (error: unknown, context: Record<string, unknown>): void
  const session: { freshToken: () => Promise<string> }
  function getToken (): Promise<string>
  function render (state: string): void
  function toast (text: string): void
  function show (from: string, text: string): void
  function reloadRecent (topic: string): void
  function retryLater (afterMs: number | undefined): void
}
