// A command-line client on fastify-realtime/client, the same client the browser uses.
//
//   node --import tsx examples/cli/server.ts                       # in one terminal
//   node --import tsx examples/cli/client.ts --name ann            # in others
//   node --import tsx examples/cli/client.ts --demo                # a scripted session
//
// Commands: echo <text>, broadcast <text>, status, help, quit. Broadcasts from every
// client show up as they come; stop the server and start it again to watch the client
// reconnect, resubscribe and recover the broadcasts it missed.
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { WebSocket } from 'ws'
import { createClient, isRealtimeClientError, type RealtimeClient } from '../../lib/client/index.js'
import type { CliContract } from './contract.js'

const HELP = `commands:
  echo <text>        the server answers with the same text
  broadcast <text>   sends the text to every client listening
  status             what the server and this client know
  help               this list
  quit               leave`

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.REALTIME_URL ?? 'ws://127.0.0.1:3001/ws' },
    name: { type: 'string', default: `cli-${process.pid}` },
    demo: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

if (args.help) {
  console.log('usage: client.ts [--url ws://host:port/ws] [--name NAME] [--demo]\n\n' + HELP)
  process.exit(0)
}

const interactive = !args.demo
const tty = process.stdin.isTTY === true && process.stdout.isTTY === true
const rl = interactive ? createInterface({ input: process.stdin, output: process.stdout, terminal: tty }) : null
rl?.setPrompt('> ')
/** Prompts only a person at a terminal, not a pipe. */
const prompt = (): void => { if (tty) rl?.prompt() }

/** Prints a line without mangling the prompt the user is typing at. */
function say (line: string): void {
  if (rl !== null && tty) {
    process.stdout.write(`\r\x1b[K${line}\n`)
    rl.prompt(true)
  } else {
    console.log(line)
  }
}

const client: RealtimeClient<CliContract> = createClient<CliContract>({
  url: args.url,
  WebSocket,
  // The demo server's token is the name; a real one would get a signed token here.
  getToken: () => args.name,
  // A command-line tool is alive for as long as its user wants, reconnections included.
  keepAlive: true
})

/** Explains an error, with the route's own codes told apart from the protocol's. */
function describe (err: unknown): string {
  if (client.isError(err, 'broadcast')) {
    switch (err.code) {
      case 'BLANK': return 'BLANK: nothing to broadcast'
      case 'TIMEOUT': return 'TIMEOUT: no answer in time (is the server up?)'
      case 'QUEUE_FULL': return 'QUEUE_FULL: too many commands waiting for the connection'
      default: return `${err.code}: ${err.message}`
    }
  }
  return isRealtimeClientError(err) ? `${err.code}: ${err.message}` : String(err)
}

client.on('state', (state) => { if (interactive && state !== 'closed') say(`* ${state}`) })
client.on('close', ({ code, reconnect, delayMs }) => {
  if (reconnect) say(`* connection lost (${code}); trying again in ${((delayMs ?? 0) / 1000).toFixed(1)} s`)
  else say(`* closed (${code})`)
})
client.on('recovered', ({ recovered }) => {
  say(recovered ? '* back: every broadcast missed meanwhile follows' : '* back, but some broadcasts were lost meanwhile')
})
client.on('error', (err) => { say(`! ${describe(err)}`) })

const broadcasts = client.subscribe('broadcast', (message, meta) => {
  say(`[broadcast #${meta.offset}] ${message.from}: ${message.text}`)
})

async function command (line: string): Promise<boolean> {
  const trimmed = line.trim()
  const [name = ''] = trimmed.split(/\s+/, 1)
  const text = trimmed.slice(name.length).trim()
  try {
    switch (name) {
      case '':
        return true
      case 'echo': {
        const reply = await client.request('echo', { text })
        say(`echo: ${reply.text} (you are ${reply.from})`)
        return true
      }
      case 'broadcast': {
        const { offset } = await client.request('broadcast', { text })
        say(`sent as broadcast #${offset}`)
        return true
      }
      case 'status': {
        const s = await client.request('status')
        say(`server: ${s.connections} connection(s), ${s.subscribers} listening, up ${Math.round(s.uptimeMs / 1000)} s; you are ${s.you}`)
        const position = client.subscriptions.find((sub) => sub.topic === 'broadcast')
        say(`client: ${client.state}, last broadcast seen #${position?.offset ?? '-'}, ${client.queued} command(s) waiting`)
        return true
      }
      case 'help':
        say(HELP)
        return true
      case 'quit':
      case 'exit':
        return false
      default:
        say(`unknown command "${name}"; type help`)
        return true
    }
  } catch (err) {
    say(`${name} failed: ${describe(err)}`)
    return true
  }
}

async function interactiveSession (): Promise<void> {
  const lines = rl as NonNullable<typeof rl>
  say(`connecting to ${args.url} as ${args.name}; type help for commands`)
  let chain = Promise.resolve(true)
  lines.on('line', (line) => {
    // One command at a time, in the order typed.
    chain = chain.then((goOn) => goOn ? command(line) : false).then((goOn) => {
      if (!goOn) lines.close()
      else prompt()
      return goOn
    })
  })
  prompt()
  await new Promise<void>((resolve) => lines.once('close', () => resolve()))
  await chain
}

async function demo (): Promise<void> {
  const step = (line: string): void => say(`demo: ${line}`)
  step(`connecting to ${args.url} as ${args.name}`)
  await broadcasts.ready
  step(`connected (${client.state}), subscribed to broadcast`)
  const echo = await client.request('echo', { text: 'hello from the demo' })
  step(`echo -> ${echo.text}`)
  const heard = new Promise<string>((resolve) => {
    const off = client.subscribe('broadcast', (message) => {
      if (message.from !== args.name) return
      off()
      resolve(message.text)
    })
  })
  const { offset } = await client.request('broadcast', { text: 'hi everyone' })
  step(`broadcast #${offset} sent; came back as "${await heard}"`)
  try {
    await client.request('broadcast', { text: '   ' })
    step('a blank broadcast was accepted?!')
  } catch (err) {
    step(`a blank broadcast is refused -> ${describe(err)}`)
  }
  const status = await client.request('status')
  step(`status -> ${status.connections} connection(s), ${status.subscribers} listening`)
}

try {
  if (interactive) {
    await interactiveSession()
  } else {
    const limit = setTimeout(() => {
      console.error('demo: gave up after 20 s')
      process.exit(2)
    }, 20_000)
    await demo()
    clearTimeout(limit)
  }
  await client.close()
  say(args.demo ? 'demo: done' : 'bye')
} catch (err) {
  console.error(`failed: ${describe(err)}`)
  await client.close()
  process.exitCode = 1
}
