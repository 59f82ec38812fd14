#!/usr/bin/env bash
# Nest 11 compatibility job: the library declares peerDependencies "^11.0.0 || ^12.0.0"; this proves the 11 half.
#
#  1. installs @nestjs/common, core, microservices, testing and platform-express 11.x (pinned below) into .ci/nest11/
#     (git-ignored, reused when already at these versions). Their peers (rxjs, reflect-metadata, class-validator, class-transformer)
#     are NOT installed there (--legacy-peer-deps): .ci/nest11 is inside the repo, so Node's resolution finds the root
#     node_modules copies, and there is one rxjs / reflect-metadata in the process (checked below and in the probe).
#  2. runs jest with NEST_COMPAT_DIR=.ci/nest11 (jest.config.js then maps @nestjs/* to the Nest 11 copy) and
#     test/pack/jest.nest11.config.js: the real-Redis e2e suites, the library's unit specs, and the probe
#     test/pack/nest-version.compat-spec.ts, which asserts the mapped packages really are 11.x.
#     Forked plain-Node test processes get Nest 11 too, through a resolve hook (test/pack/nest11-register.mjs).
#  3. reads jest's --json output, requires the probe and the core e2e suites to have passed, and prints
#     "nest11: N passed, N failed" as its last line. Exits non-zero on any failure.
#
# Needs: `npm ci` done at the root, redis-server on PATH, the npm registry (or a warm npm cache).
set -uo pipefail

NEST_COMMON=11.2.10
NEST_CORE=11.2.10
NEST_MICROSERVICES=11.2.6
NEST_TESTING=11.2.6
# Nest 11 core loads the HTTP adapter itself (NestFactory.create in test/e2e/module.e2e-spec.ts, a hybrid app); it
# resolves it from its own folder, so it finds this 11.x copy before the root's 12.x one.
NEST_PLATFORM_EXPRESS=11.2.10

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPAT="$ROOT/.ci/nest11"
RESULTS="$COMPAT/jest-results.json"
PASSED=0
FAILED=0
SUMMARY_DONE=0

REDIS_PID=""

summary() {
  local rc=$?
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null; fi
  if [ "$SUMMARY_DONE" = 0 ]; then
    # A failure before jest produced totals still counts as one failure.
    if [ "$rc" != 0 ] && [ "$FAILED" = 0 ]; then FAILED=1; fi
    echo "nest11: $PASSED passed, $FAILED failed"
  fi
}
trap summary EXIT

fail() {
  echo "nest11.sh: $*" >&2
  exit 1
}

cd "$ROOT" || exit 1
START=$(date +%s)

[ -f node_modules/jest/bin/jest.js ] || fail "root node_modules missing: run 'npm ci' at the repo root first"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || fail "redis-server/redis-cli not on PATH"

# --- 1. the Nest 11 install ------------------------------------------------------------------------------------
mkdir -p "$COMPAT"
cat >"$COMPAT/package.json" <<JSON
{
  "name": "nest11-compat",
  "private": true,
  "description": "Second install of Nest 11 for .ci/nest11.sh (git-ignored). Peers resolve from the repo root.",
  "dependencies": {
    "@nestjs/common": "$NEST_COMMON",
    "@nestjs/core": "$NEST_CORE",
    "@nestjs/microservices": "$NEST_MICROSERVICES",
    "@nestjs/testing": "$NEST_TESTING",
    "@nestjs/platform-express": "$NEST_PLATFORM_EXPRESS"
  }
}
JSON

installed_version() {
  node -p "try { require('$COMPAT/node_modules/@nestjs/$1/package.json').version } catch { '' }"
}

if [ "$(installed_version common)" = "$NEST_COMMON" ] && [ "$(installed_version core)" = "$NEST_CORE" ] &&
  [ "$(installed_version microservices)" = "$NEST_MICROSERVICES" ] && [ "$(installed_version testing)" = "$NEST_TESTING" ] &&
  [ "$(installed_version platform-express)" = "$NEST_PLATFORM_EXPRESS" ]; then
  echo "nest11.sh: reusing $COMPAT/node_modules"
else
  echo "nest11.sh: installing Nest 11 into $COMPAT"
  rm -rf "$COMPAT/node_modules" "$COMPAT/package-lock.json"
  (cd "$COMPAT" && npm install --no-audit --no-fund --no-package-lock --legacy-peer-deps --prefer-offline --loglevel=error) ||
    fail "npm install of Nest 11 failed"
fi

for pkg in common core microservices testing platform-express; do
  v="$(installed_version "$pkg")"
  case "$v" in 11.*) echo "nest11.sh: @nestjs/$pkg@$v" ;; *) fail "@nestjs/$pkg in $COMPAT is '$v', not 11.x" ;; esac
done

# Exactly one copy of each shared peer: none may be installed under .ci/nest11, and the root must have them.
dupes="$(find "$COMPAT/node_modules" -type d \( -name rxjs -o -name reflect-metadata -o -name class-validator \
  -o -name class-transformer -o -name ioredis \) -print)"
[ -z "$dupes" ] || fail "second copies of shared peers under $COMPAT (would break instanceof/isObservable): $dupes"
node --input-type=module -e "
  import { createRequire } from 'node:module';
  import { readFileSync } from 'node:fs';
  const root = createRequire('$ROOT/package.json');
  for (const pkg of ['common', 'core', 'microservices']) {
    const nest11 = createRequire('$COMPAT/node_modules/@nestjs/' + pkg + '/package.json');
    for (const peer of ['rxjs', 'reflect-metadata']) {
      const a = nest11.resolve(peer), b = root.resolve(peer);
      if (a !== b || !a.startsWith('$ROOT/node_modules/' + peer + '/')) { console.error('@nestjs/' + pkg + ' resolves ' + peer + ' to ' + a + ', the repo to ' + b); process.exit(1); }
    }
  }
  const version = (peer) => JSON.parse(readFileSync('$ROOT/node_modules/' + peer + '/package.json', 'utf8')).version;
  console.log('nest11.sh: one rxjs (' + version('rxjs') + ') and one reflect-metadata (' + version('reflect-metadata') +
    '), shared by the repo and Nest 11');
" || fail "Nest 11 does not share the repo's rxjs/reflect-metadata"

# --- 2. the tests on Nest 11 -----------------------------------------------------------------------------------
# The script owns the shared Redis (jest's global setup uses REDIS_URL when set), so that it is stopped even when a
# test run dies without its global teardown (e.g. Nest calling process.exit on a missing package).
REDIS_PORT="$(node -e "
  const s = require('node:net').createServer();
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => console.log(p === 6379 ? 0 : p)); });
")"
[ -n "$REDIS_PORT" ] && [ "$REDIS_PORT" != 0 ] || fail "no free port for redis-server"
rm -rf "$COMPAT/redis" && mkdir -p "$COMPAT/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$COMPAT/redis" \
  --logfile "$COMPAT/redis/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 100); do
  [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
  kill -0 "$REDIS_PID" 2>/dev/null || fail "redis-server exited at start (see $COMPAT/redis/redis.log)"
  sleep 0.05
done
[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] || fail "redis-server did not answer on port $REDIS_PORT"

# Some e2e tests fork plain Node processes on the built library (test/support/consumer-process.mjs): build it, and
# send those processes' @nestjs/* imports to Nest 11 as well (test/pack/nest11-register.mjs, a resolve hook).
npm run --silent build:lib || fail "npm run build:lib failed"
HOOK_LOG="$COMPAT/hook.log"
rm -f "$RESULTS" "$HOOK_LOG"
NODE_OPTIONS="${NODE_OPTIONS:-} --import=$ROOT/test/pack/nest11-register.mjs" NEST11_HOOK_LOG="$HOOK_LOG" \
REDIS_URL="redis://127.0.0.1:$REDIS_PORT" NEST_COMPAT_DIR="$COMPAT" node --experimental-vm-modules --disable-warning=ExperimentalWarning \
  node_modules/jest/bin/jest.js --config test/pack/jest.nest11.config.js --ci --json --outputFile="$RESULTS"
JEST_RC=$?

# --- 3. totals and checks from jest's JSON ---------------------------------------------------------------------
[ -s "$RESULTS" ] || fail "jest wrote no results to $RESULTS (exit code $JEST_RC)"
CHECK="$(node --input-type=module -e "
  import { readFileSync } from 'node:fs';
  const r = JSON.parse(readFileSync('$RESULTS', 'utf8'));
  const problems = [];
  const suite = (name) => r.testResults.find((t) => t.name.endsWith(name));
  for (const name of ['test/pack/nest-version.compat-spec.ts', 'test/e2e/delivery.e2e-spec.ts', 'test/e2e/groups.e2e-spec.ts',
                      'test/e2e/retry-dead-letter.e2e-spec.ts', 'test/e2e/interop.e2e-spec.ts']) {
    const s = suite(name);
    if (!s) problems.push(name + ' did not run');
    // A suite with a test skipped on Nest 11 (e.g. Nest 12's processing hooks) reports status 'focused'.
    else if (s.assertionResults.some((a) => a.status === 'failed') || !s.assertionResults.some((a) => a.status === 'passed')) problems.push(name + ' did not pass');
  }
  if (r.numRuntimeErrorTestSuites > 0) problems.push(r.numRuntimeErrorTestSuites + ' suite(s) failed to run');
  const failed = r.numFailedTests + r.numRuntimeErrorTestSuites;
  console.log(r.numPassedTests + ' ' + failed + ' ' + (problems.join('; ') || 'ok'));
")" || fail "could not read $RESULTS"
read -r PASSED FAILED PROBLEMS <<<"$CHECK"

# Forked Node processes: every @nestjs/* import they made must have landed in the Nest 11 install.
if [ -s "$HOOK_LOG" ]; then
  if grep -v " -> file://$COMPAT/node_modules/" "$HOOK_LOG" >&2; then
    PROBLEMS="forked processes loaded @nestjs/* from outside $COMPAT (listed above)"
  else
    echo "nest11.sh: $(cut -d' ' -f1 "$HOOK_LOG" | sort -u | wc -l) forked Node process(es) loaded @nestjs/* from the Nest 11 install"
  fi
fi

echo "nest11.sh: jest exit code $JEST_RC, $(($(date +%s) - START)) s"
if [ "$PROBLEMS" != ok ]; then
  echo "nest11.sh: $PROBLEMS" >&2
  [ "$FAILED" != 0 ] || FAILED=1
fi
SUMMARY_DONE=1
echo "nest11: $PASSED passed, $FAILED failed"
[ "$JEST_RC" = 0 ] && [ "$PROBLEMS" = ok ] && [ "$FAILED" = 0 ]
