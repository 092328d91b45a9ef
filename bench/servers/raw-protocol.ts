// The small JSON protocol spoken by the hand-written servers (raw ws and the
// @fastify/websocket loop). It mirrors the plugin's frames closely enough that one
// load-generator client talks to all of them:
//
//   {"type":"subscribe","id":1,"data":{"topic":"bench/a"}} -> {"type":"reply","id":1,"data":{"topic":"bench/a"}}
//   {"type":"echo","id":7,"data":{"t":1,"text":"hi"}}     -> {"type":"reply","id":7,"data":{"t":1,"text":"hi"}}
//   publication                                            -> {"type":"message","topic":"bench/a","data":{...}}
//
// Validation is what a hand-written server typically does: JSON.parse and a few
// typeof checks, instead of a compiled schema.

import { createServer } from 'node:http'
import { WebSocketServer, type PerMessageDeflateOptions, type WebSocket } from 'ws'
import { bytesWrittenBy, listenLocal, type BenchMessage, type BenchServer } from './harness.js'

export type Topics = Map<string, Set<WebSocket>>

/** The frame a hand-written server sends for a publication. */
export function messageEnvelope (topic: string, message: BenchMessage): { type: 'message', topic: string, data: BenchMessage } {
  return { type: 'message', topic, data: message }
}

/** Wires one socket into the topic sets and answers its requests. */
export function handleSocket (socket: WebSocket, topics: Topics): void {
  const mine = new Set<string>()
  socket.on('message', (raw, isBinary) => {
    if (isBinary) return
    let frame: any
    try {
      frame = JSON.parse(raw.toString())
    } catch {
      socket.send('{"type":"error","error":{"code":"BAD_REQUEST"}}')
      return
    }
    if (frame === null || typeof frame !== 'object') return
    const id = frame.id
    const data = frame.data
    switch (frame.type) {
      case 'echo':
        if (data !== null && typeof data === 'object' && typeof data.t === 'number' && typeof data.text === 'string') {
          socket.send(JSON.stringify({ type: 'reply', id, data: { t: data.t, text: data.text } }))
        } else {
          socket.send(JSON.stringify({ type: 'error', id, error: { code: 'VALIDATION_FAILED' } }))
        }
        return
      case 'subscribe': {
        const topic = data?.topic
        if (typeof topic !== 'string' || topic.length === 0 || topic.length > 256) {
          socket.send(JSON.stringify({ type: 'error', id, error: { code: 'VALIDATION_FAILED' } }))
          return
        }
        let set = topics.get(topic)
        if (set === undefined) topics.set(topic, set = new Set())
        set.add(socket)
        mine.add(topic)
        socket.send(JSON.stringify({ type: 'reply', id, data: { topic } }))
        return
      }
      case 'ping':
        socket.send(JSON.stringify({ type: 'pong', id }))
        return
      default:
        socket.send(JSON.stringify({ type: 'error', id, error: { code: 'UNKNOWN_TYPE' } }))
    }
  })
  socket.once('close', () => {
    for (const topic of mine) {
      const set = topics.get(topic)
      if (set === undefined) continue
      set.delete(socket)
      if (set.size === 0) topics.delete(topic)
    }
  })
}

/**
 * A raw `ws` bench server: an HTTP server, a WebSocketServer on /ws speaking the raw
 * protocol above, and `publish` left to the variant, which is all that differs.
 * `perMessageDeflate` is accepted when a client offers it (off by default, as in ws).
 */
export async function startRawWsServer (
  publish: (subscribers: Set<WebSocket>, topic: string, message: BenchMessage) => void,
  options: { perMessageDeflate?: PerMessageDeflateOptions } = {}
): Promise<BenchServer> {
  const http = createServer((_req, res) => { res.writeHead(426).end() })
  const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 64 * 1024, perMessageDeflate: options.perMessageDeflate ?? false })
  const topics: Topics = new Map()
  wss.on('connection', (socket) => handleSocket(socket, topics))
  const port = await listenLocal(http)
  return {
    port,
    publish (topic, message) {
      const subscribers = topics.get(topic)
      if (subscribers !== undefined) publish(subscribers, topic, message)
    },
    connections: () => wss.clients.size,
    bytesWritten: () => bytesWrittenBy(wss.clients),
    close: async () => {
      for (const socket of wss.clients) socket.terminate()
      await new Promise((resolve) => wss.close(resolve))
      await new Promise((resolve) => http.close(resolve))
    }
  }
}
