// The plugin server of plugin.ts with route replies sent unchecked (`validateReplies:
// false`): what checking each reply against its schema costs on request/response.
// (Publications and events are always checked, once per publication.)
import { startPlugin } from './plugin.js'
import { runServer } from './harness.js'

runServer('plugin-unchecked', () => startPlugin({ validateReplies: false }))
