#!/usr/bin/env bash
# Installs the benchmark's peers from npm, each in its own folder with its own Nest version, as a user would
# (npm run bench:peers:install). Needs the npm registry; npm run bench skips a peer whose folder is not installed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# @de-novo/nestjs-redis-streams: peerDependencies allow Nest 9 or 10 only; the lock file pins what was measured.
npm ci --prefix "$here/de-novo" --no-audit --no-fund || npm install --prefix "$here/de-novo" --no-audit --no-fund
