// The CommonJS build (dist/cjs), for require() and for TypeScript projects compiling to
// CommonJS. esbuild transpiles lib/ file by file (a second tsc pass would double the
// build, which `npm pack` and so the package test run each time); the declarations tsc
// wrote for the ESM build describe the same exports, so they are copied next to it, and a
// package.json marks the folder CommonJS for Node and for TypeScript.
import { build } from 'esbuild'
import { cpSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'

function files (dir, suffix) {
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith(suffix)).map((f) => join(dir, f))
}

await build({
  entryPoints: files('lib', '.ts'),
  outdir: 'dist/cjs',
  outbase: 'lib',
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
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
