import { createRequire } from 'node:module'
const F = (await import('fastify')).default
const R = (await import('fastify-realtime')).default
const before = new Set(Object.keys(createRequire(import.meta.url).cache))
const app = F(); await app.register(R); await app.listen({ port: 0 })
const added = Object.keys(createRequire(import.meta.url).cache).filter((f) => !before.has(f))
console.log(added.length, [...new Set(added.map((f) => f.replace(/.*node_modules\//, '').split('/').slice(0, 2).join('/')))].join(' '))
console.trace
await app.close()
