// The contract of the command-line example, imported by its server and its client
// alike: the server hands these schemas to route(), topic(); the client takes its
// types from them. Nothing here is generated or copied.
import { Type } from '@sinclair/typebox'
import { defineContract } from '../../lib/client/index.js'

export const contract = defineContract({
  routes: {
    /** Answers with the text it was sent. */
    echo: {
      data: Type.Object({ text: Type.String({ minLength: 1, maxLength: 500 }) }),
      reply: Type.Object({ text: Type.String(), from: Type.String() })
    },
    /** Publishes the text on the `broadcast` topic, to everyone subscribed (the sender too). */
    broadcast: {
      data: Type.Object({ text: Type.String({ maxLength: 500 }) }),
      reply: Type.Object({ offset: Type.Integer() }),
      errors: { BLANK: Type.Object({}) }
    },
    /** What the server knows about itself and about this connection. */
    status: {
      reply: Type.Object({
        connections: Type.Integer(),
        subscribers: Type.Integer(),
        uptimeMs: Type.Integer(),
        you: Type.String()
      })
    }
  },
  topics: {
    broadcast: {
      message: Type.Object({ from: Type.String(), text: Type.String(), at: Type.Integer() })
    }
  }
})

export type CliContract = typeof contract
