// Compiles the schemas of routes, topics and events once, at registration. The hot
// path only ever calls the functions built here: a validator that answers with the
// protocol's error details, and a fast-json-stringify serializer that sends only
// the properties a schema names.
//
// Ajv, its formats and fast-json-stringify (some 80 modules) are required on the first
// schema compiled, not when the plugin is imported: an app that declares no schema never
// loads them, and the plugin's built-in schemas compile on their first use (onFirstUse).
import { createRequire } from 'node:module'
import type { Ajv, ErrorObject, Options as AjvOptions, Plugin } from 'ajv'
import type { TSchema } from '../protocol/schema.js'
import { errorCodes, type WireErrorDetail } from '../protocol/errors.js'

export type Validator = (data: unknown) => WireErrorDetail[] | null
export type Serializer = (data: unknown) => string
/** The first way outbound data fails its schema (`/n must be integer`), or null when it matches. */
export type Checker = (data: unknown) => string | null

export interface AjvConfig {
  customOptions?: AjvOptions
  plugins?: Array<Plugin<unknown> | [Plugin<unknown>, unknown]>
}

const require = createRequire(import.meta.url)

interface Engines {
  Ajv: typeof import('ajv').Ajv
  addFormats: typeof import('ajv-formats').default
  fastJson: typeof import('fast-json-stringify').default
}
let engines: Engines | undefined

/** Ajv, ajv-formats and fast-json-stringify, required once, when first needed. */
export function schemaEngines (): Engines {
  engines ??= {
    Ajv: (require('ajv') as typeof import('ajv')).Ajv,
    addFormats: (require('ajv-formats') as typeof import('ajv-formats')).default,
    fastJson: (require('fast-json-stringify') as typeof import('fast-json-stringify')).default
  }
  return engines
}

/** A function made by `make` on its first call (a built-in schema compiled when first used). */
export function onFirstUse<A extends unknown[], R> (make: () => (...args: A) => R): (...args: A) => R {
  let made: ((...args: A) => R) | undefined
  return (...args) => (made ??= make())(...args)
}

export class SchemaCompiler {
  /** Validates message data as sent: JSON already has its types, so nothing is coerced. */
  #data: Ajv | undefined
  /** Validates topic params, which arrive as strings and are coerced to their declared types. */
  #params: Ajv | undefined
  /**
   * Checks what the server sends (replies, events, publications). It neither coerces
   * nor fills defaults: a price of 1.5 for an integer must be refused, not sent as 1,
   * and the app's own objects must not be changed behind its back.
   */
  #outbound: Ajv | undefined
  readonly #config: AjvConfig
  readonly #base: AjvOptions
  readonly #fjsAjvOptions: AjvOptions

  /** Each Ajv instance is made when a schema of its kind is first compiled. */
  constructor (config: AjvConfig = {}) {
    this.#config = config
    this.#base = {
      allErrors: false,
      useDefaults: true,
      removeAdditional: false,
      strict: false,
      ...config.customOptions
    }
    this.#fjsAjvOptions = { strict: false, ...config.customOptions }
  }

  validator (schema: TSchema, what: string, owner: string): Validator {
    this.#data ??= build({ ...this.#base, coerceTypes: false }, this.#config.plugins)
    return compileValidator(this.#data, schema, what, owner)
  }

  paramsValidator (schema: TSchema, owner: string): Validator {
    this.#params ??= build({ ...this.#base, coerceTypes: true }, this.#config.plugins)
    return compileValidator(this.#params, schema, 'params', owner)
  }

  /** A check of outbound data against its schema, run once per publication or reply, never per subscriber. */
  checker (schema: TSchema, what: string, owner: string): Checker {
    this.#outbound ??= build({ ...this.#base, coerceTypes: false, useDefaults: false, removeAdditional: false }, this.#config.plugins)
    const validate = compileValidator(this.#outbound, schema, what, owner)
    return (data) => {
      const details = validate(data)
      if (details === null) return null
      const [first] = details
      return `${first.path === '' ? '(the value)' : first.path} ${first.message}`
    }
  }

  serializer (schema: TSchema, what: string, owner: string): Serializer {
    try {
      return schemaEngines().fastJson(schema as never, { ajv: this.#fjsAjvOptions }) as Serializer
    } catch (err) {
      throw new errorCodes.FST_REALTIME_SCHEMA(what, owner, (err as Error).message)
    }
  }
}

function build (options: AjvOptions, plugins: AjvConfig['plugins'] = []): Ajv {
  const { Ajv, addFormats } = schemaEngines()
  const ajv = new Ajv(options)
  addFormats(ajv)
  for (const entry of plugins) {
    if (Array.isArray(entry)) entry[0](ajv, entry[1])
    else entry(ajv)
  }
  return ajv
}

function compileValidator (ajv: Ajv, schema: TSchema, what: string, owner: string): Validator {
  let validate: ReturnType<Ajv['compile']>
  try {
    validate = ajv.compile(schema)
  } catch (err) {
    throw new errorCodes.FST_REALTIME_SCHEMA(what, owner, (err as Error).message)
  }
  return (data) => (validate(data) ? null : toDetails(validate.errors))
}

/** Ajv errors as the protocol's `details`: a JSON pointer to the offending value and a message. */
function toDetails (errors: ErrorObject[] | null | undefined): WireErrorDetail[] {
  return (errors ?? []).map((e) => {
    const missing = e.keyword === 'required' ? (e.params as { missingProperty?: string }).missingProperty : undefined
    const path = missing === undefined ? e.instancePath : `${e.instancePath}/${escapePointer(missing)}`
    return { path, message: e.message ?? 'invalid' }
  })
}

function escapePointer (key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1')
}
