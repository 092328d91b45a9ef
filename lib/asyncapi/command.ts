// `fastify-realtime asyncapi ./contract.js` (bin: cli.ts): prints the AsyncAPI document
// of a contract module (its default export, or its export named `contract`), so a
// client team can generate from the module without running a server.
import { readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { toYaml } from './yaml.js'
import type { Contract } from '../protocol/contract.js'
import { asyncapiFromContract } from './contract.js'

const USAGE = `Usage: fastify-realtime asyncapi <module> [options]

Prints the AsyncAPI 3.0 document of a contract (defineContract), the module's default
export or its export named "contract".

Options:
  --format json|yaml   output format (default: yaml)
  --output <file>      write to a file instead of standard output
  --title <text>       info.title
  --version <text>     info.version
  --server <url>       where clients connect, ws://host:port or wss://host
  --path <path>        URL path of the WebSocket endpoint (default: /ws)
  --auth               the server authenticates by first message (auth frame)
  --help               this text
`

class UsageError extends Error {}

const TYPESCRIPT = /\.[mc]?tsx?$/

/**
 * The contract module. Node 20 does not run TypeScript, and a contract is usually a `.ts`
 * file shared by server and client: then the project's own tsx (a dev dependency of most
 * TypeScript projects, resolved from the working directory, not from this package) loads
 * it, or the error says what to do.
 */
async function importContract (file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href
  try {
    return await import(url) as Record<string, unknown>
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_UNKNOWN_FILE_EXTENSION' || !TYPESCRIPT.test(file)) throw err
  }
  let tsx: { tsImport: (specifier: string, parent: string) => Promise<unknown> }
  try {
    // tsx's ES module API, found through the project's own copy of tsx and its exports map
    // (its CommonJS flavour cannot load ES module hooks from a bin).
    const manifestPath = createRequire(join(process.cwd(), 'package.json')).resolve('tsx/package.json')
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { exports: Record<string, { import: { default: string } }> }
    tsx = await import(pathToFileURL(join(dirname(manifestPath), manifest.exports['./esm/api'].import.default)).href) as typeof tsx
  } catch {
    throw new Error(`${file} is TypeScript, which this Node.js does not run by itself: install tsx in the project (npm install --save-dev tsx) and run the command again, or give the compiled .js module`)
  }
  return await tsx.tsImport(url, import.meta.url) as Record<string, unknown>
}

function isContract (value: unknown): value is Contract {
  return value !== null && typeof value === 'object' &&
    ['routes', 'topics', 'events'].some((key) => key in value)
}

/** Where the command writes: `process` in the bin, buffers in tests. */
export interface CommandIo {
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
}

/** Runs the command; resolves to the exit code (0 done, 1 failed, 2 bad usage), never throws. */
export async function runCommand (argv: string[], io: CommandIo): Promise<number> {
  try {
    await run(argv, io)
    return 0
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true
    io.stderr.write(`fastify-realtime: ${(err as Error).message}\n${usage ? `\n${USAGE}` : ''}`)
    return usage ? 2 : 1
  }
}

async function run (argv: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'yaml' },
      output: { type: 'string' },
      title: { type: 'string' },
      version: { type: 'string' },
      server: { type: 'string' },
      path: { type: 'string' },
      auth: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help === true) {
    io.stdout.write(USAGE)
    return
  }
  const [command, modulePath] = positionals
  if (command !== 'asyncapi' || modulePath === undefined || positionals.length > 2) throw new UsageError('expected: asyncapi <module>')
  if (values.format !== 'json' && values.format !== 'yaml') throw new UsageError(`--format must be json or yaml, not "${values.format}"`)
  if (values.server !== undefined && !/^wss?:\/\/[^/]+$/.test(values.server)) throw new UsageError(`--server must look like ws://host:port or wss://host, not "${values.server}"`)
  if (values.path !== undefined && !values.path.startsWith('/')) throw new UsageError('--path must start with /')

  const module = await importContract(resolve(modulePath))
  const contract = isContract(module.default) ? module.default : module.contract
  if (!isContract(contract)) throw new UsageError(`${modulePath} exports no contract: export it as default or as "contract" (defineContract({ routes, topics, events }))`)

  const document = asyncapiFromContract(contract, {
    info: { title: values.title, version: values.version },
    ...(values.server === undefined ? {} : { server: { url: values.server } }),
    path: values.path,
    auth: values.auth
  })
  const text = values.format === 'json' ? JSON.stringify(document, null, 2) + '\n' : toYaml(document)
  if (values.output === undefined) io.stdout.write(text)
  else await writeFile(values.output, text)
}
