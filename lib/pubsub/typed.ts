// Types of the server helpers that take a topic name or an event name (`publish`,
// `ctx.publish`, `send`, `broadcast`), from what the application declares by declaration
// merging:
//
//   declare module 'fastify-realtime' {
//     interface RealtimeTopics { 'room/:name': { message: { text: string } } }
//     interface RealtimeEvents { notice: { text: string } }
//   }
//
// or from a contract: `interface RealtimeTopics extends TopicsOf<typeof contract> {}` and
// `interface RealtimeEvents extends EventsOf<typeof contract> {}`. A `message` (or event
// entry) may be a TypeBox schema (0.34 or 1.x), taken as its Static type, or a plain type.
//
// A concrete name is matched to the declared patterns segment by segment, as the server
// matches it: `room/a` and `` `room/${string}` `` belong to `room/:name`; a `*param` takes
// the rest (`ticker/BTC/USDT` belongs to `ticker/*symbol`). A name that matches no declared
// pattern is a compile error once the application declares topics (an event name outside
// RealtimeEvents once it declares events): the server would refuse it at run time. A name
// typed only as `string`, and any name in an application that declares nothing, keep
// working with data `unknown`: the server checks them at run time.
import type { IsSchema, Static } from '../protocol/schema.js'
import type { PublishOptions, PublishResult } from './publish.js'

/** Topic patterns and their publications. Augment it (see above); empty by default. */
export interface RealtimeTopics {}

/** Server events and their data. Augment it (see above); empty by default. */
export interface RealtimeEvents {}

/** A declared type: a TypeBox schema stands for its Static type; `any` stays `any`. */
export type DeclaredData<T> = 0 extends (1 & T) ? any : IsSchema<T> extends true ? Static<T> : T

type SegmentMatches<N extends string, S extends string> =
  S extends `:${string}` ? (N extends '' ? false : true) : N extends S ? true : false

/** Whether a name (literal or template literal type) belongs to a pattern. */
export type NameMatches<N extends string, P extends string> =
  P extends `*${string}`
    ? (N extends '' ? false : true)
    : P extends `${infer Head}/${infer Rest}`
      ? N extends `${infer NameHead}/${infer NameRest}`
        ? SegmentMatches<NameHead, Head> extends true ? NameMatches<NameRest, Rest> : false
        : false
      : N extends `${string}/${string}` ? false : SegmentMatches<N, P>

type DeclaredPattern = keyof RealtimeTopics & string

/** The declared patterns a topic name belongs to (never when none). */
export type DeclaredPatternOf<N extends string> = {
  [P in DeclaredPattern]: NameMatches<N, P> extends true ? P : never
}[DeclaredPattern]

/** What may be published on a topic name: the declared message type, or `unknown`. */
export type TopicData<N extends string> =
  string extends N
    ? unknown
    : [DeclaredPatternOf<N>] extends [never]
        ? unknown
        : RealtimeTopics[DeclaredPatternOf<N>] extends { message: infer M } ? DeclaredData<M> : unknown

/** The data of an event: the declared type, or `unknown` for an event not declared. */
export type EventPayload<E extends string> =
  string extends E
    ? unknown
    : E extends keyof RealtimeEvents ? DeclaredData<RealtimeEvents[E]> : unknown

/**
 * A topic name the helpers take: any name while the application declares no topic;
 * once it does, a name of a declared pattern (or one typed only as `string`, checked at run
 * time), and for any other a message type that says so in the compile error.
 */
export type DeclaredTopicName<T extends string> =
  string extends T
    ? T
    : [DeclaredPattern] extends [never]
        ? T
        : [DeclaredPatternOf<T>] extends [never] ? `Undeclared topic "${T}": declare its pattern in RealtimeTopics` : T

/** An event name the helpers take: the same rule as DeclaredTopicName's, with RealtimeEvents. */
export type DeclaredEventName<E extends string> =
  string extends E
    ? E
    : [keyof RealtimeEvents] extends [never]
        ? E
        : E extends keyof RealtimeEvents ? E : `Undeclared event "${E}": declare it in RealtimeEvents`

/** `app.realtime.publish` and `ctx.publish`. */
export type PublishFunction = <T extends string>(topic: DeclaredTopicName<T>, data: NoInfer<TopicData<T>>, options?: PublishOptions) => Promise<PublishResult>
