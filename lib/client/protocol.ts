// The parts of the wire protocol (realtime.v1) that a client needs, from the one
// module that defines them for the server too (it imports nothing Node-only, which the
// browser bundle of the chat example proves on every start).
import { CLIENT_BUILTINS as BUILTINS } from '../protocol/constants.js'

export { CloseCode, MAX_KEY_LENGTH, ReadyState, SUBPROTOCOL, SUBPROTOCOL_MSGPACK, UnsubscribeCode, answeredBeforeClose, shouldReconnect, type ProtocolErrorCode } from '../protocol/constants.js'

/** Message types a client sends that the server handles itself; `request()` refuses them. */
export const CLIENT_BUILTINS: ReadonlySet<string> = new Set(BUILTINS)
