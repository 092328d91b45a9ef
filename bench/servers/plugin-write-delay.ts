// The plugin server of plugin.ts with `writeDelay: 5`: each socket's frames of 5 ms leave
// in one write (connection/write-batch.ts), trading that much latency for fewer system calls.
import { startPlugin } from './plugin.js'
import { runServer } from './harness.js'

runServer('plugin-write-delay', () => startPlugin({ writeDelay: 5 }))
