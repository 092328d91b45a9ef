// The build (`npm run build`, run by `npm pack`): dist/ for ES modules, dist/cjs for
// require() and for TypeScript projects compiling to CommonJS.
// - Declarations: tsc writes them (emitDeclarationOnly); only those the entries' public
//   types reach are kept, once per flavour (dist/cjs gets a copy, under a package.json that
//   marks the folder CommonJS for Node and for TypeScript).
// - ES modules: esbuild bundles each entry, code shared by entries in shared chunks, so an
//   import reads a few files instead of a hundred (import time) and one class is one class
//   whatever entry an app reaches it through.
// - CommonJS: esbuild transpiles lib/ file by file. CommonJS has no shared chunks; bundling
//   each entry would give the main entry and fastify-realtime/redis two copies of the error
//   classes.
// Source maps name lib/ files and lines, what a stack trace needs; the sources are in the
// repository, not embedded in every map (they were half of the package's weight).
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

const ENTRIES = ['index', 'redis', 'postgres', 'client/index', 'react/index', 'dashboard/index', 'asyncapi/cli']

function files (dir, suffix) {
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith(suffix)).map((f) => join(dir, f))
}

rmSync('dist', { recursive: true, force: true })
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' })

// Declarations no entry's public types reach (through `from '…'` or `import('…')`) are
// internal and never read by a consumer's compiler.
const reached = new Set()
function reach (file) {
  if (reached.has(file)) return
  reached.add(file)
  for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const target = join(dirname(file), specifier.replace(/\.js$/, '.d.ts'))
    if (!existsSync(target)) throw new Error(`${file} imports ${specifier}, which has no declaration`)
    reach(target)
  }
}
for (const entry of ENTRIES) reach(join('dist', `${entry}.d.ts`))
for (const declaration of files('dist', '.d.ts')) if (!reached.has(declaration)) rmSync(declaration)

const common = { platform: 'node', target: 'node20', sourcemap: true, sourcesContent: false, logLevel: 'warning' }
await build({
  ...common,
  entryPoints: ENTRIES.map((entry) => join('lib', `${entry}.ts`)),
  outdir: 'dist',
  outbase: 'lib',
  bundle: true,
  splitting: true,
  format: 'esm',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]'
})
await build({
  ...common,
  entryPoints: files('lib', '.ts'),
  outdir: 'dist/cjs',
  outbase: 'lib',
  format: 'cjs',
  // import.meta.url does not exist in CommonJS: the same URL, made from __filename.
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__importMetaUrl' }
})
// Files modules read at run time (the dashboard's page and scripts) go next to both builds.
for (const out of ['dist', join('dist', 'cjs')]) cpSync(join('lib', 'dashboard', 'public'), join(out, 'dashboard', 'public'), { recursive: true })
for (const declaration of files('dist', '.d.ts').filter((f) => !f.startsWith(join('dist', 'cjs')))) {
  cpSync(declaration, join('dist', 'cjs', relative('dist', declaration)))
}
writeFileSync(join('dist', 'cjs', 'package.json'), JSON.stringify({ type: 'commonjs' }) + '\n')
