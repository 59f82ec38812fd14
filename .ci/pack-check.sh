#!/usr/bin/env bash
# npm pack check: the published tarball, installed into a separate Nest 12 app, must work.
#
#  1. builds the library (npm run build:lib) and `npm pack`s libs/redis-streams-enterprise into a temp dir;
#     the tarball must hold package.json, dist/index.js and dist/index.d.ts, and no *.spec.* or *.tsbuildinfo file.
#  2. creates a throw-away app OUTSIDE the repo (mktemp -d, "type": "module") and installs the tarball plus its peers
#     at the versions of the root package.json (npm install --prefer-offline: the npm cache is used when warm).
#  3. runs test/pack/pack-check.mjs there (plain JS ESM): public exports, its own redis-server on a free port (never
#     6379), a Nest microservice with RedisStreamsServer and one @EventPattern handler, one event from
#     RedisStreamsClient delivered within 10 s, everything closed.
# Last line: "pack-check: 1 passed, 0 failed" (or "0 passed, 1 failed"); the exit code follows it.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="$ROOT/libs/redis-streams-enterprise"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rse-pack-check.XXXXXX")"
RESULT=fail

cleanup() {
  if [ -f "$WORK/redis/redis.pid" ]; then kill -9 "$(cat "$WORK/redis/redis.pid")" 2>/dev/null; fi
  rm -rf "$WORK"
  if [ "$RESULT" = pass ]; then echo "pack-check: 1 passed, 0 failed"; else echo "pack-check: 0 passed, 1 failed"; fi
}
trap cleanup EXIT

fail() {
  echo "pack-check.sh: $*" >&2
  exit 1
}

cd "$ROOT" || exit 1
START=$(date +%s)
[ -d node_modules/typescript ] || fail "root node_modules missing: run 'npm ci' at the repo root first"
command -v redis-server >/dev/null || fail "redis-server not on PATH"

# --- 1. build and pack ------------------------------------------------------------------------------------------
npm run --silent build:lib || fail "npm run build:lib failed"
mkdir -p "$WORK/pack" "$WORK/app" "$WORK/redis"
TARBALL_NAME="$(cd "$LIB" && npm pack --silent --pack-destination "$WORK/pack" | tail -n 1)" || fail "npm pack failed"
TARBALL="$WORK/pack/$TARBALL_NAME"
[ -f "$TARBALL" ] || fail "npm pack produced no tarball (got '$TARBALL_NAME')"
tar -tzf "$TARBALL" | sed 's|^package/||' | sort >"$WORK/pack/files.txt" || fail "cannot list $TARBALL"
echo "pack-check.sh: $TARBALL_NAME, $(wc -l <"$WORK/pack/files.txt") files, $(du -k "$TARBALL" | cut -f1) KiB"
for required in package.json dist/index.js dist/index.d.ts; do
  grep -qx "$required" "$WORK/pack/files.txt" || fail "the tarball has no $required"
done
if grep -E '\.spec\.|\.tsbuildinfo$' "$WORK/pack/files.txt"; then fail "the tarball contains spec or tsbuildinfo files (listed above)"; fi

# --- 2. a separate Nest 12 app that installs the tarball ---------------------------------------------------------
# Peers at the root's pinned versions: the tarball must work with exactly what the repo is tested with.
node --input-type=module -e "
  import { readFileSync, writeFileSync } from 'node:fs';
  const root = JSON.parse(readFileSync('$ROOT/package.json', 'utf8'));
  const all = { ...root.dependencies, ...root.devDependencies };
  const peers = ['@nestjs/common', '@nestjs/core', '@nestjs/microservices', 'ioredis', 'rxjs', 'reflect-metadata',
                 'class-validator', 'class-transformer'];
  const dependencies = { 'nestjs-redis-streams-enterprise': 'file:$TARBALL' };
  for (const name of peers) {
    if (!all[name]) throw new Error('the root package.json does not pin ' + name);
    dependencies[name] = all[name];
  }
  if (!/^12\./.test(dependencies['@nestjs/core'])) throw new Error('expected Nest 12 at the root, got ' + dependencies['@nestjs/core']);
  if (dependencies.ioredis !== '6.0.0') throw new Error('expected ioredis 6.0.0 at the root, got ' + dependencies.ioredis);
  writeFileSync('$WORK/app/package.json', JSON.stringify({ name: 'rse-pack-check-app', private: true, type: 'module', dependencies }, null, 2));
" || fail "cannot write the app's package.json"
cp "$ROOT/test/pack/pack-check.mjs" "$WORK/app/pack-check.mjs"
(cd "$WORK/app" && npm install --prefer-offline --no-audit --no-fund --loglevel=error) || fail "npm install in the app failed"
INSTALLED="$(cd "$WORK/app" && node -p "['nestjs-redis-streams-enterprise','@nestjs/core','@nestjs/microservices','ioredis']
  .map((n) => n + '@' + require('./node_modules/' + n + '/package.json').version).join(' ')")"
echo "pack-check.sh: installed $INSTALLED"

# --- 3. run it ------------------------------------------------------------------------------------------------------
(cd "$WORK/app" && PACK_CHECK_REDIS_DIR="$WORK/redis" timeout 90 node pack-check.mjs) || fail "pack-check.mjs failed"

echo "pack-check.sh: passed in $(($(date +%s) - START)) s"
RESULT=pass
