// Type-checks every ```ts (and ```tsx) block of README.md, strict, as a user would paste it: each block
// becomes its own module under .readme-check/ (git-ignored) and its own program, so one
// block's declaration merging never leaks into another. `fastify-realtime`,
// `fastify-realtime/client` and `fastify-realtime/redis` map to lib/ through `paths`.
//
// A block whose first line names a file (`// contract.ts`, `// server.ts (…)`) is that file:
// it is written under that name, so other blocks may import it (`./contract.js`), and it is
// checked without the prelude, since a file must declare what it uses. Every other block
// is a snippet: it may use the placeholders of scripts/readme-prelude.d.ts (`app`,
// `isBanned`, …) without declaring them. Blocks that are not TypeScript are fenced with
// another language. Any error fails the check with the README line it is on.
//
// A block that is a program (it builds an app, declares and serves) is marked with
// `<!-- readme-run: name -->` on the line before its fence: once every block type-checks,
// scripts/readme-run.ts runs it against a real server, driven by the scenario `name`.
//
// Run: node --import tsx scripts/readme-check.ts [README.md]
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, parse, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const readmePath = resolve(root, process.argv[2] ?? 'README.md')
// Inside the repository, so that node_modules and package.json's "type" apply; one folder
// per Markdown file, so that checking another file never races with README's check.
const outDir = join(root, '.readme-check', parse(readmePath).name)
const label = basename(readmePath)
const prelude = join(root, 'scripts', 'readme-prelude.d.ts')

export interface Block {
  /** README line of the block's first line of code (the line after the fence). */
  line: number
  code: string
  /** The file a block names in its first line (`contract.ts`), or null for a snippet. */
  file: string | null
  /** Fenced `tsx` (React). */
  tsx?: boolean
  /** The scenario of scripts/readme-run.ts that runs it (`<!-- readme-run: name -->` before the fence). */
  run?: string
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/
const FILE_NAME = /^\/\/\s*([\w./-]+\.ts)\b/
const RUN_MARK = /^\s*<!--\s*readme-run:\s*([\w-]+)/

/** The TypeScript blocks of a Markdown text, with the line each starts on. */
export function extractBlocks (markdown: string): Block[] {
  const lines = markdown.split(/\r?\n/)
  const blocks: Block[] = []
  let open: { fence: string, lang: string, start: number, body: string[], run: string | undefined } | null = null
  for (let i = 0; i < lines.length; i++) {
    const m = FENCE.exec(lines[i])
    if (open === null) {
      if (m !== null) open = { fence: m[2], lang: m[3].toLowerCase(), start: i + 2, body: [], run: RUN_MARK.exec(lines[i - 1] ?? '')?.[1] }
      continue
    }
    // A fence closes with the same character, at least as long, and nothing after it.
    if (m !== null && m[2][0] === open.fence[0] && m[2].length >= open.fence.length && m[3] === '') {
      if (open.lang === 'ts' || open.lang === 'typescript' || open.lang === 'tsx') {
        const named = FILE_NAME.exec(open.body[0] ?? '')
        const block: Block = { line: open.start, code: open.body.join('\n'), file: named === null ? null : named[1] }
        if (open.lang === 'tsx') block.tsx = true
        if (open.run !== undefined) block.run = open.run
        blocks.push(block)
      }
      open = null
      continue
    }
    open.body.push(lines[i])
  }
  if (open !== null) throw new Error(`${label}:${open.start - 1}: code fence never closed`)
  return blocks
}

function compilerOptions (): ts.CompilerOptions {
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile)
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  const redis = existsSync(join(root, 'lib', 'redis.ts')) ? 'lib/redis.ts' : relative(root, join(outDir, 'redis-entry.ts'))
  return {
    ...parsed.options,
    strict: true,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    rootDir: undefined,
    // React blocks are fenced `tsx`.
    jsx: ts.JsxEmit.ReactJSX,
    baseUrl: root,
    paths: {
      'fastify-realtime': ['lib/index.ts'],
      'fastify-realtime/client': ['lib/client/index.ts'],
      'fastify-realtime/react': ['lib/react/index.ts'],
      'fastify-realtime/redis': [redis],
      'fastify-realtime/postgres': ['lib/postgres.ts']
    }
  }
}

async function main (): Promise<void> {
  const blocks = extractBlocks(readFileSync(readmePath, 'utf8'))
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  // Until lib/redis.ts exists, `fastify-realtime/redis` is the Redis broker and the publisher.
  const lib = relative(outDir, join(root, 'lib'))
  writeFileSync(join(outDir, 'redis-entry.ts'), `export * from '${lib}/broker/redis.js'\nexport * from '${lib}/publisher.js'\n`)
  const seen = new Map<string, number>()
  const files = blocks.map((block) => {
    const name = block.file ?? `readme-${block.line}.${block.tsx === true ? 'tsx' : 'ts'}`
    if (seen.has(name)) throw new Error(`${label}:${block.line}: a second block names ${name} (first at line ${seen.get(name)})`)
    seen.set(name, block.line)
    const path = join(outDir, name)
    mkdirSync(dirname(path), { recursive: true })
    // `export {}` makes every block a module (its top-level names stay its own); it goes
    // last so that block lines and file lines are the same.
    writeFileSync(path, block.code + '\nexport {}\n')
    return { block, path }
  })

  const options = compilerOptions()
  const host = ts.createCompilerHost(options)
  // Lib and dependency files are parsed once and shared by all the programs.
  const cache = new Map<string, ts.SourceFile | undefined>()
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    if (fileName.startsWith(outDir)) return getSourceFile(fileName, languageVersion, onError, shouldCreate)
    if (!cache.has(fileName)) cache.set(fileName, getSourceFile(fileName, languageVersion, onError, shouldCreate))
    return cache.get(fileName)
  }

  let failed = 0
  for (const { block, path } of files) {
    const program = ts.createProgram({ rootNames: block.file === null ? [path, prelude] : [path], options, host })
    const source = program.getSourceFile(path)
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]
    for (const d of diagnostics) {
      failed++
      const message = ts.flattenDiagnosticMessageText(d.messageText, '\n')
      if (d.file !== undefined && d.start !== undefined) {
        const { line, character } = d.file.getLineAndCharacterOfPosition(d.start)
        const where = d.file.fileName === path
          ? `${label}:${block.line + line}:${character + 1}`
          : `${relative(root, d.file.fileName)}:${line + 1}:${character + 1} (${label} block at line ${block.line})`
        console.error(`${where} TS${d.code}: ${message}`)
      } else {
        console.error(`${label} block at line ${block.line} TS${d.code}: ${message}`)
      }
    }
  }
  if (failed > 0) {
    console.error(`readme-check: ${failed} error(s) in ${label}'s TypeScript blocks`)
    process.exitCode = 1
    return
  }
  console.log(`readme-check: ${files.length} TypeScript blocks of ${label} type-check`)
  // Loaded only now: it loads the plugin and Fastify, which type-checking does not need.
  const { runBlocks } = await import('./readme-run.js')
  if (await runBlocks(blocks, `${outDir}-run`, root, label) > 0) process.exitCode = 1
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
