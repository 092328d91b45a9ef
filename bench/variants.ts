// The servers compared. Each entry names a standalone server process under
// bench/servers/ and the client the load generators use to talk to it.
//
// To add a variant (say, the plugin on a Redis broker against Socket.IO with its
// Redis adapter): write bench/servers/<id>.ts with runServer(), then add an entry
// here. `nodes: 2` starts two processes of it; clients are spread over them and
// publications are made on the first, so cross-node fan-out is what gets measured.

import type { ClientKind } from './load/clients.js'

export interface Variant {
  id: string
  label: string
  /** File under bench/servers/. */
  server: string
  client: ClientKind
  /** Server processes to start (clients are spread across them). */
  nodes: number
  /** Bar colour in the SVG chart. */
  color: string
  /** The client URL for a server process listening on `port`. */
  url: (port: number) => string
  /** What this variant is, in one sentence, for the README and the JSON. */
  description: string
  /** The scenarios it takes part in, when not all of them. */
  scenarios?: string[]
}

const wsUrl = (port: number) => `ws://127.0.0.1:${port}/ws`

/** Every ratio is to this variant: the practical limit of Node + ws (see servers/ws-true-frame-once.ts). */
export const BASELINE = 'ws-true-frame-once'

export const variants: Variant[] = [
  {
    id: 'plugin',
    label: 'fastify-realtime',
    server: 'plugin.ts',
    client: 'realtime',
    nodes: 1,
    color: '#2f6fdf',
    url: wsUrl,
    description: 'this plugin: schema-serialised publications framed once, validated routes'
  },
  {
    id: 'plugin-metrics',
    label: 'fastify-realtime + metrics',
    server: 'plugin-metrics.ts',
    client: 'realtime',
    nodes: 1,
    color: '#7fa7ef',
    url: wsUrl,
    description: 'this plugin with metrics: true (prom-client counters and histograms on the diagnostics channels)'
  },
  {
    id: 'plugin-write-delay',
    label: 'fastify-realtime, writeDelay 5',
    server: 'plugin-write-delay.ts',
    client: 'realtime',
    nodes: 1,
    color: '#1c4597',
    url: wsUrl,
    description: 'this plugin with writeDelay: 5 (each socket\'s frames of 5 ms leave in one write); fan-out only',
    scenarios: ['fanout']
  },
  {
    id: 'plugin-unchecked',
    label: 'fastify-realtime, replies unchecked',
    server: 'plugin-unchecked.ts',
    client: 'realtime',
    nodes: 1,
    color: '#b7cdf5',
    url: wsUrl,
    description: 'this plugin with validateReplies: false (route replies serialised without the check against their schema); request/response only',
    scenarios: ['reqres']
  },
  {
    id: 'plugin-unsliced',
    label: 'fastify-realtime, fan-out unsliced',
    server: 'plugin-unsliced.ts',
    client: 'realtime',
    nodes: 1,
    color: '#1a3f80',
    url: wsUrl,
    description: 'this plugin with fanOutSlice above any topic: each publication written to every subscriber in one event-loop turn, as before issue 27; scale only',
    scenarios: ['scale']
  },
  {
    id: 'ws-true-frame-once',
    label: 'ws true frame-once',
    server: 'ws-true-frame-once.ts',
    client: 'raw',
    nodes: 1,
    color: '#111111',
    url: wsUrl,
    description: 'raw ws, the baseline: each publication\'s whole frame (header + payload) built once as one Buffer and written to every subscriber\'s net.Socket when ws\'s Sender has nothing queued; with permessage-deflate, compressed once'
  },
  {
    id: 'ws-send-once',
    label: 'ws (ws.send each)',
    server: 'ws-send-once.ts',
    client: 'raw',
    nodes: 1,
    color: '#5a5a5a',
    url: wsUrl,
    description: 'raw ws: JSON.stringify and Buffer.from once per publication, then ws.send(buffer) to every socket (ws frames and, with permessage-deflate, compresses per socket); the baseline before issue 16'
  },
  {
    id: 'ws-stringify-each',
    label: 'ws (stringify each)',
    server: 'ws-stringify-each.ts',
    client: 'raw',
    nodes: 1,
    color: '#8a8a8a',
    url: wsUrl,
    description: 'raw ws: a Set of sockets and JSON.stringify for every socket'
  },
  {
    id: 'fastify-websocket',
    label: '@fastify/websocket loop',
    server: 'fastify-websocket.ts',
    client: 'raw',
    nodes: 1,
    color: '#2aa876',
    url: wsUrl,
    description: '@fastify/websocket with a hand-written loop: stringify once, send the string to each socket'
  },
  {
    id: 'socketio',
    label: 'Socket.IO 4.8',
    server: 'socketio.ts',
    client: 'socketio',
    nodes: 1,
    color: '#e8833a',
    url: (port) => `http://127.0.0.1:${port}`,
    description: 'Socket.IO 4.8 (websocket transport only): rooms, io.to(room).emit, acknowledgements'
  }
]
