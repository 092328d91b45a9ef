#!/usr/bin/env bash
# The other end of the test matrix: the type checks and the tap suites against the OLDEST
# fastify and TypeBox our peer ranges admit (their lower bounds, read from package.json).
# `npm test` runs everything on the newest (our dev install); CI runs this after it.
# node_modules is put back to the lockfile's versions on the way out.
#
# Every suite runs here except those excluded by pattern below, each for a stated reason,
# so a new suite is covered without anyone remembering to list it. Extra arguments are
# passed to tap (e.g. `npm run test:oldest -- --grep=...`).
set -euo pipefail
cd "$(dirname "$0")/.."
lower () { node -p "require('./package.json').peerDependencies['$1'].replace(/^[\\^~>=]+/, '')"; }
fastify="$(lower fastify)"
typebox="$(lower @sinclair/typebox)"

excluded () {
  case "$1" in
    # Headless Chromium drives a page: what it checks is the browser client and pages,
    # not the server's peers, and Chromium costs the most CPU and time of any suite.
    test/browser/*.test.ts) return 0 ;;
    # Each starts a Redis Cluster of its own (several redis-server processes joined by
    # redis-cli --cluster create, masters killed for failovers): minutes of CPU on a
    # 2-core machine, testing the Redis side, which does not depend on fastify's version.
    test/broker/redis-shard*.test.ts | test/examples/cluster-shard.test.ts) return 0 ;;
    # Packs the tarball and installs it into consumer projects, one of which already is
    # on the oldest fastify and TypeBox (CommonJS, without ioredis): it makes its own
    # matrix and must not run with the dev install swapped under it.
    test/package/package.test.ts) return 0 ;;
  esac
  return 1
}

suites=()
shopt -s globstar
for file in test/**/*.test.ts; do
  if ! excluded "$file"; then suites+=("$file"); fi
done

trap 'npm install --no-audit --no-fund --prefer-offline >/dev/null 2>&1' EXIT
npm install --no-save --no-audit --no-fund --prefer-offline "fastify@$fastify" "@sinclair/typebox@$typebox" >/dev/null 2>&1
# The swap must have happened: a silent no-op would test the newest twice.
# (By path: TypeBox's "exports" do not expose its package.json.)
have="$(node -p "require('./node_modules/fastify/package.json').version + ' ' + require('./node_modules/@sinclair/typebox/package.json').version")"
if [ "$have" != "$fastify $typebox" ]; then
  echo "test:oldest: installed fastify and @sinclair/typebox are $have, not $fastify $typebox" >&2
  exit 1
fi
echo "test:oldest: fastify $fastify, @sinclair/typebox $typebox; ${#suites[@]} suites"
npx tsc -p tsconfig.json --noEmit
npx tsc -p types/tsconfig.json --noEmit
# The envelope fuzzer sends 20,000 frames rather than 100,000: the newest run already
# fuzzes the full count, and here it only has to show the same oracle holds on the oldest
# peers (it saves about 20 s of a 2-core machine).
FUZZ_RUNS="${FUZZ_RUNS:-20000}" npx tap --disable-coverage "$@" "${suites[@]}"
