// Raw `ws`, true frame-once: the baseline every ratio is taken to. Each
// publication's complete WebSocket frame (header and payload in one Buffer) is
// built once, and that Buffer is written straight to each subscriber's net.Socket
// when nothing is queued in ws's Sender ahead of it (otherwise ws.send() queues it
// in order). See lib/wire/ws-frame.ts for why that is safe.
//
// With permessage-deflate negotiated (deflate scenario) the publication is
// compressed once and that one compressed frame goes to every socket: the limit a
// compress-once server can reach (lib/wire/compress-once.ts, which the plugin runs on too).
//
// The route each delivery took is counted (one increment), and the fan-out
// scenarios print it: proof that the frames did go out directly.
import type { SendRoute } from '../../lib/wire/compress-once.js'
import { compressOnce } from '../package.js'
import { runServer } from './harness.js'
import { BENCH_DEFLATE, BENCH_DEFLATE_ONCE } from './deflate.js'
import { messageEnvelope, startRawWsServer } from './raw-protocol.js'

const routes: Record<SendRoute, number> = { direct: 0, 'direct-deflated': 0, ws: 0, closed: 0 }

runServer('ws-true-frame-once', async () => {
  const server = await startRawWsServer((subscribers, topic, message) => {
    const frame = new compressOnce.SharedFrame(JSON.stringify(messageEnvelope(topic, message)), BENCH_DEFLATE_ONCE)
    for (const socket of subscribers) routes[compressOnce.sendShared(socket, frame, compressOnce.frameRoute(socket))]++
  }, { perMessageDeflate: BENCH_DEFLATE })
  return { ...server, routes: () => ({ ...routes }) }
})
