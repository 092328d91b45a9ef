// Compression: fan-out with permessage-deflate negotiated (no context takeover
// either way). Each publication carries ~2 KB of words and numbers, text that
// deflate shrinks about as much as real JSON, so compression pays for itself here.
//
// Only the variants that can compress run it. The baseline compresses each
// publication once and writes that one compressed frame to every socket (lib/wire/compress-once.ts), and so does the plugin with its `compression` option;
// `ws (ws.send each)` hands the message to ws, which compresses it again for every socket.

import { BASELINE } from '../variants.js'
import { measureFanout } from './fanout.js'
import type { Scenario } from './types.js'

export const deflate: Scenario = {
  id: 'deflate',
  title: (c) => `Compressed fan-out: ${c.deflateSubscribers.toLocaleString('en-US')} subscribers × ${c.deflatePublications.toLocaleString('en-US')} publications of ~${(c.deflatePadLength / 1000).toFixed(1)} KB, permessage-deflate without context takeover`,
  description: 'Fan-out with permessage-deflate negotiated by every client: deliveries per second, server CPU per delivery (all and user space), bytes written to the sockets per delivery (the compression achieved). The baseline compresses once per publication; the others let ws compress for every socket.',
  variants: [BASELINE, 'ws-send-once', 'plugin'],
  columns: [
    { key: 'deliveriesPerSec', label: 'deliveries/s', better: 'higher', digits: 0, ratioTo: [BASELINE], chart: 'Compressed fan-out, deliveries/s' },
    { key: 'cpuPerDeliveryUs', label: 'srv CPU µs/deliv', better: 'lower', digits: 2, ratioTo: [BASELINE], chart: 'Compressed fan-out, server CPU per delivery, µs' },
    { key: 'userCpuPerDeliveryUs', label: 'user µs/deliv', better: 'lower', digits: 2, ratioTo: [BASELINE] },
    { key: 'wireBytesPerDelivery', label: 'wire B/deliv', better: 'lower', digits: 0 },
    { key: 'burstP99Ms', label: 'burst p99 ms', better: 'lower', digits: 1 }
  ],
  run: (ctx) => measureFanout(ctx, {
    subscribers: ctx.counts.deflateSubscribers,
    publications: ctx.counts.deflatePublications,
    warmup: ctx.counts.deflateWarmup,
    pacedPublications: 0,
    pacedRate: 0,
    padLength: ctx.counts.deflatePadLength,
    padStyle: 'text',
    deflate: true
  })
}
