// What the plugin takes for a schema, and the type a schema stands for, without naming a
// schema library: the declarations must type-check in an application that has installed
// `@sinclair/typebox` 0.34, or `typebox` 1.x, or neither.
//
// - A TypeBox 0.34 schema carries its type in the `static` property.
// - A TypeBox 1.x schema carries no such property: its type is computed from the schema's
//   own shape, which is JSON Schema with a `'~kind'` and the `'~optional'`, `'~readonly'`,
//   `'~unsafe'` markers. So is a plain JSON Schema written `as const`.
// `Static` below reads the first, and computes the second from the JSON Schema keywords
// (const, enum, type, properties and required, items, anyOf, allOf, patternProperties).
// A schema it cannot read (a `$ref`, a cyclic type) stands for `unknown`.
// Types only: nothing here runs.

/** A schema: a TypeBox 0.34 or 1.x schema, or a plain JSON Schema object. */
export interface TSchema { [key: string | symbol]: any }

/** A TypeBox 0.34 schema: its type is in `static`. */
interface TypeBox034 { static: unknown, params: unknown[] }

/** Whether a type is a schema (TypeBox 0.34 or 1.x) rather than a plain type. */
export type IsSchema<T> =
  T extends TypeBox034 ? true
    : T extends { '~kind': string } | { '~unsafe': unknown } ? true
      : false

/** The type a schema stands for: its TypeBox `Static` type, or `unknown` for what it cannot read. */
export type Static<T> =
  IsAny<T> extends true
    ? any
    : T extends TypeBox034
      ? T extends { static: infer S } ? S : unknown
      : StaticJson<T>

/** The kinds of TypeBox 1.x whose type is not in their JSON Schema keywords. */
interface KindStatic {
  Any: any
  Unknown: unknown
  Never: never
  Undefined: undefined
  Void: void
  BigInt: bigint
  Symbol: symbol
  TemplateLiteral: string
  Ref: unknown
  Cyclic: unknown
  This: unknown
  Function: unknown
  Constructor: unknown
}

type StaticJson<T> =
  T extends { '~unsafe': infer U } ? U
    : T extends { '~kind': infer K extends keyof KindStatic } ? KindStatic[K]
      : T extends { const: infer C } ? C
        : T extends { enum: infer E extends readonly unknown[] } ? E[number]
          : StaticComposite<T>

type StaticComposite<T> =
  T extends { anyOf: infer A extends readonly unknown[] } ? StaticUnion<A>
    : T extends { oneOf: infer A extends readonly unknown[] } ? StaticUnion<A>
      : T extends { allOf: infer A extends readonly unknown[] } ? StaticIntersect<A>
        : T extends { type: infer N } ? StaticTyped<T, N> : unknown

type IsAny<T> = 0 extends (1 & T) ? true : false

type StaticUnion<A extends readonly unknown[]> = IsAny<A> extends true ? unknown : { [I in keyof A]: Static<A[I]> }[number]

type StaticIntersect<A extends readonly unknown[], R = unknown> =
  IsAny<A> extends true ? unknown
    : A extends readonly [infer Head, ...infer Rest] ? StaticIntersect<Rest, R & Static<Head>> : R

type StaticTyped<T, N> =
  IsAny<N> extends true ? unknown
    : N extends readonly unknown[]
      ? { [I in keyof N]: StaticTyped<T, N[I]> }[number]
      : N extends 'string' ? string
        : N extends 'number' | 'integer' ? number
          : N extends 'boolean' ? boolean
            : N extends 'null' ? null
              : N extends 'array' ? StaticArray<T>
                : N extends 'object' ? StaticObject<T>
                  : unknown

type StaticArray<T> =
  T extends { items: infer I }
    ? IsAny<I> extends true ? unknown[]
      : I extends readonly unknown[]
        ? { -readonly [K in keyof I]: Static<I[K]> }
        : T extends { '~immutable': true } ? ReadonlyArray<Static<I>> : Array<Static<I>>
    : unknown[]

type Evaluate<T> = { [K in keyof T]: T[K] } & {}

type StaticObject<T> =
  T extends { properties: infer P extends object }
    ? IsAny<P> extends true ? Record<string, unknown>
      : keyof P extends never ? object : StaticProperties<P, RequiredOf<T, P>>
    : T extends { patternProperties: infer P extends object }
      ? Record<string, Static<P[keyof P]>>
      : Record<string, unknown>

/**
 * The required keys: in TypeBox 1.x those not marked `'~optional'`; in a plain JSON
 * Schema those its `required` lists.
 */
type RequiredOf<T, P> =
  T extends { '~kind': string }
    ? { [K in keyof P]: P[K] extends { '~optional': true } ? never : K }[keyof P]
    : T extends { required: infer R extends readonly unknown[] }
      ? Extract<R[number], keyof P>
      : never

type ReadonlyKeys<P> = { [K in keyof P]: P[K] extends { '~readonly': true } ? K : never }[keyof P]

type StaticProperties<P, Req extends keyof P> = Evaluate<
  { -readonly [K in Exclude<Req, ReadonlyKeys<P>>]-?: Static<P[K]> } &
  { readonly [K in Req & ReadonlyKeys<P>]-?: Static<P[K]> } &
  { -readonly [K in Exclude<keyof P, Req | ReadonlyKeys<P>>]?: Static<P[K]> } &
  { readonly [K in Exclude<ReadonlyKeys<P>, Req>]?: Static<P[K]> }
>
