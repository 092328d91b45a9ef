// Starts the two-node example in one terminal: two chat servers on ports 3001 and 3002
// sharing one Redis (or one Redis Cluster), and the worker posting into room/general.
// Ctrl-C stops all three.
//
//   REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/cluster/start.ts
//   REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001 node --import tsx examples/cluster/start.ts
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
// A cluster when REDIS_CLUSTER_NODES is set (passed on as it is), else one Redis.
const redis = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

function run (name: string, script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: root,
    env: { ...process.env, REDIS_URL: redis, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const prefix = (chunk: Buffer) => chunk.toString().split('\n').filter((line) => line.length > 0).map((line) => `[${name}] ${line}\n`).join('')
  child.stdout?.on('data', (chunk: Buffer) => process.stdout.write(prefix(chunk)))
  child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(prefix(chunk)))
  child.once('exit', (code, signal) => console.log(`[${name}] exited (${signal ?? code})`))
  return child
}

const children = [
  run('node-1', 'examples/chat/server.ts', { PORT: '3001' }),
  run('node-2', 'examples/chat/server.ts', { PORT: '3002' }),
  run('worker', 'examples/cluster/worker.ts', { INTERVAL_MS: process.env.INTERVAL_MS ?? '30000' })
]

// Ctrl-C reaches the children from the terminal already; wait for them to finish.
process.on('SIGINT', () => {})
process.on('SIGTERM', () => {
  for (const child of children) child.kill('SIGTERM')
})
