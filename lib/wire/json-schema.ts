// The few TypeBox builders the plugin's own schemas use (options, built-in frames, the
// AsyncAPI wire, the dashboard), made without loading TypeBox: its entry is some 200
// modules, a fifth of a second of every start for schemas known when the plugin is
// written. Each builder returns the object TypeBox's would (the same keys in the same
// order, with its Kind and Optional symbols, which are registered symbols), and is
// typed as TypeBox's, so `Static` and the exported schemas keep their types.
import type { Type as TypeBox, Kind as TypeBoxKind, OptionalKind as TypeBoxOptionalKind } from '@sinclair/typebox'

export const Kind: typeof TypeBoxKind = Symbol.for('TypeBox.Kind') as typeof TypeBoxKind
export const OptionalKind: typeof TypeBoxOptionalKind = Symbol.for('TypeBox.Optional') as typeof TypeBoxOptionalKind

type Builders = Pick<typeof TypeBox, 'Object' | 'String' | 'Number' | 'Integer' | 'Boolean' | 'Unknown' | 'Array' | 'Literal' | 'Union' | 'Optional'>
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
