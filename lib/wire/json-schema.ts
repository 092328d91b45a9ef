// The few TypeBox builders the plugin's own schemas use (options, built-in frames, the
// AsyncAPI wire, the dashboard), made without loading TypeBox: its entry is some 200
// modules, a fifth of a second of every start for schemas known when the plugin is
// written. Each builder returns the object TypeBox 0.34's would (the same keys in the same
// order, with its Kind and Optional symbols, which are registered symbols). Their types
// name no TypeBox package (the declarations must type-check with either TypeBox, or
// none): they are written as TypeBox 1.x types are (JSON Schema with a `'~kind'`, and
// `'~optional'` on an optional property), so `Static` (protocol/schema.ts) reads them.
// The `'~kind'` and `'~optional'` keys are in the types only; at run time the symbols are.
import type { TSchema } from '../protocol/schema.js'

export const Kind: unique symbol = Symbol.for('TypeBox.Kind') as any
export const OptionalKind: unique symbol = Symbol.for('TypeBox.Optional') as any

export interface TObject<P extends Record<string, TSchema> = Record<string, TSchema>> extends TSchema { '~kind': 'Object', type: 'object', properties: P, required?: string[] }
export interface TString extends TSchema { '~kind': 'String', type: 'string' }
export interface TNumber extends TSchema { '~kind': 'Number', type: 'number' }
export interface TInteger extends TSchema { '~kind': 'Integer', type: 'integer' }
export interface TBoolean extends TSchema { '~kind': 'Boolean', type: 'boolean' }
export interface TUnknown extends TSchema { '~kind': 'Unknown' }
export interface TArray<I extends TSchema = TSchema> extends TSchema { '~kind': 'Array', type: 'array', items: I }
export interface TLiteral<V extends string | number | boolean = string | number | boolean> extends TSchema { '~kind': 'Literal', const: V }
export interface TUnion<T extends TSchema[] = TSchema[]> extends TSchema { '~kind': 'Union', anyOf: T }
export type TOptional<S extends TSchema> = S & { '~optional': true }

interface Builders {
  Object: <P extends Record<string, TSchema>>(properties: P, options?: Options) => TObject<P>
  String: (options?: Options) => TString
  Number: (options?: Options) => TNumber
  Integer: (options?: Options) => TInteger
  Boolean: (options?: Options) => TBoolean
  Unknown: (options?: Options) => TUnknown
  Array: <I extends TSchema>(items: I, options?: Options) => TArray<I>
  Literal: <const V extends string | number | boolean>(value: V, options?: Options) => TLiteral<V>
  Union: <const T extends TSchema[]>(types: [...T], options?: Options) => TUnion<T>
  Optional: <S extends TSchema>(schema: S) => TOptional<S>
}
type Options = Record<string, unknown> | undefined
type Schema = Record<string | symbol, unknown>

function create (schema: Schema, options: Options): Schema {
  return options === undefined ? schema : { ...options, ...schema }
}

const builders = {
  Object (properties: Record<string, Schema>, options?: Options): Schema {
    const required = Object.keys(properties).filter((key) => properties[key][OptionalKind] !== 'Optional')
    return create(required.length > 0 ? { [Kind]: 'Object', type: 'object', required, properties } : { [Kind]: 'Object', type: 'object', properties }, options)
  },
  String: (options?: Options): Schema => create({ [Kind]: 'String', type: 'string' }, options),
  Number: (options?: Options): Schema => create({ [Kind]: 'Number', type: 'number' }, options),
  Integer: (options?: Options): Schema => create({ [Kind]: 'Integer', type: 'integer' }, options),
  Boolean: (options?: Options): Schema => create({ [Kind]: 'Boolean', type: 'boolean' }, options),
  Unknown: (options?: Options): Schema => create({ [Kind]: 'Unknown' }, options),
  Array: (items: Schema, options?: Options): Schema => create({ [Kind]: 'Array', type: 'array', items }, options),
  Literal: (value: string | number | boolean, options?: Options): Schema => create({ [Kind]: 'Literal', const: value, type: typeof value }, options),
  Union (types: Schema[], options?: Options): Schema {
    if (types.length === 0) return create({ [Kind]: 'Never', not: {} }, options)
    if (types.length === 1) return create(types[0], options)
    return create({ [Kind]: 'Union', anyOf: types }, options)
  },
  Optional: (schema: Schema): Schema => ({ ...schema, [OptionalKind]: 'Optional' })
}

/** TypeBox's `Type`, for the builders above only. */
export const Type = builders as unknown as Builders
