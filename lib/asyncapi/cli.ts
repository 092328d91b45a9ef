#!/usr/bin/env node
// The package's bin: `npx fastify-realtime asyncapi ./contract.js` (see command.ts).
import { runCommand } from './command.js'

process.exitCode = await runCommand(process.argv.slice(2), process)
