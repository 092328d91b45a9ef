// Raw `ws`, serialise once and send each (the baseline until issue 16): each
// publication goes through JSON.stringify and Buffer.from once, and every
// subscriber's socket is sent that Buffer with ws.send(), so ws still builds a
// header and makes a two-buffer write per delivery. With permessage-deflate
// negotiated (deflate scenario), ws compresses the message again for every socket.
import { runServer } from './harness.js'
import { BENCH_DEFLATE } from './deflate.js'
import { messageEnvelope, startRawWsServer } from './raw-protocol.js'

const TEXT = { binary: false } as const

runServer('ws-send-once', () => startRawWsServer((subscribers, topic, message) => {
  const payload = Buffer.from(JSON.stringify(messageEnvelope(topic, message)))
  for (const socket of subscribers) if (socket.readyState === 1) socket.send(payload, TEXT)
}, { perMessageDeflate: BENCH_DEFLATE }))
