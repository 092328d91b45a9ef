#!/usr/bin/env node
// The package's bin: `npx fastify-realtime asyncapi ./contract.js` (see command.ts).
// No top-level await: this module is also built as CommonJS, with the rest of lib/.
import { runCommand } from './command.js'

runCommand(process.argv.slice(2), process).then((code) => { process.exitCode = code }, (err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
