#!/usr/bin/env bash
# Architecture job: the layer rules of .dependency-cruiser.cjs (the rules file documents the layers) over the library.
# Also proves the check can fail: a probe file that imports the Nest server from a feature must be refused. Then the
# size limits of the library's files and functions.
# Last line: "deps: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
if npm run -s lint:deps; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
probe=libs/redis-streams-enterprise/src/ordering/zz-layer-probe.ts
printf "import { RedisStreamsServer } from '../transport/redis-streams.server.js';\nexport const probe = RedisStreamsServer;\n" > "$probe"
if npx depcruise "$probe" --config .dependency-cruiser.cjs >/dev/null 2>&1; then
  echo "the layer check accepted a feature importing the Nest server"; failed=$((failed + 1))
else
  passed=$((passed + 1))
fi
rm -f "$probe"
# File and function sizes (scripts/quality/sizes.mjs).
if node scripts/quality/sizes.mjs; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "deps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
