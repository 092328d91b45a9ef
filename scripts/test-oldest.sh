#!/usr/bin/env bash
# The other end of the test matrix: the core suites and the type checks against the
# OLDEST fastify and TypeBox our peer ranges admit (their lower bounds, read from
# package.json). `npm test` runs everything on the newest (our dev install); CI runs this
# after it. node_modules is put back to the lockfile's versions on the way out.
set -euo pipefail
cd "$(dirname "$0")/.."
lower () { node -p "require('./package.json').peerDependencies['$1'].replace(/^[\\^~>=]+/, '')"; }
fastify="$(lower fastify)"
typebox="$(lower @sinclair/typebox)"
trap 'npm install --no-audit --no-fund --prefer-offline >/dev/null 2>&1' EXIT
npm install --no-save --no-audit --no-fund --prefer-offline "fastify@$fastify" "@sinclair/typebox@$typebox" >/dev/null 2>&1
echo "test:oldest: fastify $fastify, @sinclair/typebox $typebox"
npx tsc -p tsconfig.json --noEmit
npx tsc -p types/tsconfig.json --noEmit
npx tap --disable-coverage \
  test/routes.test.ts test/topics.test.ts test/topic-names.test.ts test/hooks.test.ts \
  test/lifecycle.test.ts test/recovery.test.ts test/presence.test.ts test/limits.test.ts \
  test/outbound.test.ts test/shutdown.test.ts test/delivery.test.ts test/connection.test.ts \
  test/options.test.ts test/idempotency.test.ts test/encapsulation.test.ts test/example-chat.test.ts \
  test/upgrade-memory.test.ts
