// Raw `ws`, the baseline: each publication is serialised once and turned into a
// Buffer once; every subscriber's socket sends that same Buffer as a text frame.
import { runServer } from './harness.js'
import { messageEnvelope, startRawWsServer } from './raw-protocol.js'

const TEXT = { binary: false } as const

runServer('ws-frame-once', () => startRawWsServer((subscribers, topic, message) => {
  const frame = Buffer.from(JSON.stringify(messageEnvelope(topic, message)))
  for (const socket of subscribers) if (socket.readyState === 1) socket.send(frame, TEXT)
}))
