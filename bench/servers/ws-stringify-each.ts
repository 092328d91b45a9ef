// Raw `ws`, the naive loop: subscribers in a Set, and the publication serialised
// again for every socket (each send also converts the string to bytes).
import { runServer } from './harness.js'
import { messageEnvelope, startRawWsServer } from './raw-protocol.js'

runServer('ws-stringify-each', () => startRawWsServer((subscribers, topic, message) => {
  const envelope = messageEnvelope(topic, message)
  for (const socket of subscribers) if (socket.readyState === 1) socket.send(JSON.stringify(envelope))
}))
