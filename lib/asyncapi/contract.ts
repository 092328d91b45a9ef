// A contract's AsyncAPI document, without a server: what a client team generates
// from the module it already imports (also `npx fastify-realtime asyncapi`).
import type { Contract } from '../protocol/contract.js'
import { describeContract, type ContractAsyncApiOptions } from './description.js'
import { buildAsyncApi, type AsyncApiDocument } from './document.js'

export function asyncapiFromContract (contract: Contract, options: ContractAsyncApiOptions = {}): AsyncApiDocument {
  return buildAsyncApi(describeContract(contract, options), options)
}
