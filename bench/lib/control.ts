// The control channel between the orchestrator (bench/run.ts) and its children
// (servers and load generators). It runs over the Node IPC channel that
// child_process.fork opens, so it never shares a socket with the traffic measured.
//
//   parent -> child   { id, cmd, args }
//   child  -> parent  { id, ok: true, result } | { id, ok: false, error }
//   child  -> parent  { ready: true, info }          once, when the child can serve
//
// Every call has a timeout; every child exits when the channel closes (its parent
// died) or when its maximum lifetime is over, so nothing outlives a run.

import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export interface Request {
  id: number
  cmd: string
  args: Record<string, unknown>
}

export type Reply = { id: number, ok: true, result: unknown } | { id: number, ok: false, error: string }

export type Handler = (args: any) => unknown

/** Directory of the repository (bench/..): children run from there so `--import tsx` resolves. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

const children = new Set<ChildProcess>()

/** Sends SIGKILL to every child still alive. Safe to call from an 'exit' handler. */
export function killAllChildren (): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try { child.kill('SIGKILL') } catch {}
    }
  }
  children.clear()
}

/** How many children this process started that have not exited yet. */
export function liveChildren (): number {
  let n = 0
  for (const child of children) if (child.exitCode === null && child.signalCode === null) n++
  return n
}

export interface SpawnOptions {
  /** Extra node flags (e.g. --expose-gc, --cpu-prof). `--import tsx` is always first. */
  nodeFlags?: string[]
  env?: Record<string, string>
  /** Longest the child may live, in ms; it exits by itself past it. */
  maxLifetimeMs: number
}

/** A child process spoken to through the control channel. */
export class Child {
  readonly name: string
  readonly process: ChildProcess
  readonly exited: Promise<number | string | null>
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  #ready: Promise<any>

  constructor (name: string, file: string, options: SpawnOptions) {
    this.name = name
    this.process = fork(file, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx', ...(options.nodeFlags ?? [])],
      env: { ...process.env, ...options.env, BENCH_MAX_LIFETIME_MS: String(options.maxLifetimeMs) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced'
    })
    children.add(this.process)
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => {
        children.delete(this.process)
        for (const [, p] of this.#pending) {
          clearTimeout(p.timer)
          p.reject(new Error(`${this.name} exited (${signal ?? code}) during a call`))
        }
        this.#pending.clear()
        resolve(signal ?? code)
      })
    })
    let readyResolve: (v: unknown) => void
    this.#ready = new Promise((resolve) => { readyResolve = resolve })
    this.process.on('message', (message: any) => {
      if (message?.ready === true) {
        readyResolve(message.info)
        return
      }
      const pending = this.#pending.get(message?.id)
      if (pending === undefined) return
      this.#pending.delete(message.id)
      clearTimeout(pending.timer)
      if (message.ok) pending.resolve(message.result)
      else pending.reject(new Error(`${this.name}: ${message.error}`))
    })
    // A child crashing while we wait must not leave the wait hanging.
    this.process.on('error', () => {})
  }

  /** Resolves with the child's ready info, or rejects after `timeoutMs`. */
  ready<T> (timeoutMs: number): Promise<T> {
    return withTimeout(
      Promise.race([
        this.#ready,
        this.exited.then((code) => { throw new Error(`${this.name} exited (${code}) before it was ready`) })
      ]),
      timeoutMs,
      `${this.name} did not start within ${timeoutMs} ms`
    ) as Promise<T>
  }

  call<T = unknown> (cmd: string, args: Record<string, unknown>, timeoutMs: number): Promise<T> {
    if (!this.process.connected) return Promise.reject(new Error(`${this.name} is not connected`))
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${this.name}: "${cmd}" took longer than ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      this.process.send({ id, cmd, args } satisfies Request)
    })
  }

  /** Asks the child to exit, then kills it if it has not after `graceMs`. */
  async stop (graceMs: number): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return
    this.call('shutdown', {}, graceMs).catch(() => {})
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
  }
}

export function withTimeout<T> (promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(message)), ms) })
  ]).finally(() => clearTimeout(timer))
}

// ------------------------------------------------------------------ child side

/**
 * Serves the control channel in a child: answers calls with the handlers, tells the
 * parent it is ready, and exits when the parent goes away or the lifetime is over.
 * The `shutdown` handler, when given, runs before the exit it triggers.
 */
export function serveControl (handlers: Record<string, Handler>, info: unknown): void {
  if (process.send === undefined) {
    console.error('This file is a bench child process; run `npm run bench` instead.')
    process.exit(1)
  }
  const lifetime = Number(process.env.BENCH_MAX_LIFETIME_MS ?? 600_000)
  setTimeout(() => {
    console.error(`[bench child ${process.pid}] maximum lifetime of ${lifetime} ms reached; exiting`)
    process.exit(3)
  }, lifetime).unref()
  process.on('disconnect', () => process.exit(0))
  process.on('message', (message: Request) => {
    const handler = message.cmd === 'shutdown' ? shutdownHandler(handlers.shutdown) : handlers[message.cmd]
    const send = (reply: Reply) => { if (process.connected) process.send?.(reply) }
    if (handler === undefined) {
      send({ id: message.id, ok: false, error: `unknown command ${message.cmd}` })
      return
    }
    Promise.resolve()
      .then(() => handler(message.args ?? {}))
      .then(
        (result) => send({ id: message.id, ok: true, result }),
        (err: Error) => send({ id: message.id, ok: false, error: err?.stack ?? String(err) })
      )
  })
  process.send({ ready: true, info })
}

function shutdownHandler (close: Handler | undefined): Handler {
  return async () => {
    // Exit even if closing hangs; a normal exit lets --cpu-prof write its profile.
    setTimeout(() => process.exit(0), 2000).unref()
    try { await close?.({}) } catch {}
    setImmediate(() => process.exit(0))
    return true
  }
}
