// What the bench servers run of this project: the built package (dist/), as an app
// does. Run from the TypeScript source through tsx, every closure the plugin makes
// would also pay tsx's keepNames helper, a cost no user has. bench/run.ts builds
// dist/ first when it is missing or older than lib/. Types come from the source, so
// the project type-checks before anything is built.
import type * as Plugin from '../lib/index.js'
import type * as Redis from '../lib/redis.js'
import type * as Postgres from '../lib/postgres.js'
import type * as CompressOnce from '../lib/wire/compress-once.js'

const dist = (file: string): string => new URL(`../dist/${file}`, import.meta.url).href

export const plugin = await import(dist('index.js')) as typeof Plugin
export const redis = await import(dist('redis.js')) as typeof Redis
export const postgres = await import(dist('postgres.js')) as typeof Postgres
export const compressOnce = await import(dist('wire/compress-once.js')) as typeof CompressOnce
