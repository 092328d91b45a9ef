// The plugin server of plugin.ts with every fan-out in one event-loop turn (a slice
// larger than any topic): the scale scenario compares the sliced default with it.
import { startPlugin } from './plugin.js'
import { runServer } from './harness.js'

runServer('plugin-unsliced', () => startPlugin({ fanOutSlice: 1_000_000_000 }))
