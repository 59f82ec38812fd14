#!/usr/bin/env bash
# Docs check: runs `npm run docs:check` (scripts/docs/check.ts), which
#  1. regenerates the configuration reference from the option classes and fails when docs/configuration.md differs,
#  2. generates the API reference with TypeDoc (docs/api, not committed),
#  3. builds the VitePress site (dead links to pages fail the build),
#  4. checks every internal link and anchor of the built site (offline).
# Last line: "docs: N passed, N failed" (checks run / failed); the exit code follows it.
set -uo pipefail
cd "$(dirname "$0")/.."

mkdir -p .tmp
log=.tmp/docs-check.log
[ -x node_modules/.bin/vitepress ] || npm ci --no-audit --no-fund
npm run docs:check 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

summary=$(grep -E '^docs: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
if [ -z "$summary" ]; then
  echo "docs: 0 passed, 1 failed"
  exit 1
fi
if [ "$status" -ne 0 ] && [[ "$summary" =~ \ 0\ failed$ ]]; then
  # npm failed before or after the checks (e.g. compiling scripts/docs): count it.
  passed=$(echo "$summary" | sed -E 's/^docs: ([0-9]+) passed.*/\1/')
  echo "docs: $passed passed, 1 failed"
  exit 1
fi
echo "$summary"
[ "$status" -eq 0 ]
