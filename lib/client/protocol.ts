// The parts of the wire protocol (realtime.v1) that a client needs, from the one
// module that defines them for the server too (it imports nothing Node-only, which the
// browser bundle of the chat example proves on every start).
import { CLIENT_BUILTINS as BUILTINS } from '../protocol.js'

export { MAX_KEY_LENGTH, SUBPROTOCOL, UnsubscribeCode, answeredBeforeClose, shouldReconnect, type ProtocolErrorCode } from '../protocol.js'

/** Message types a client sends that the server handles itself; `request()` refuses them. */
export const CLIENT_BUILTINS: ReadonlySet<string> = new Set(BUILTINS)
