// Run by .ci/pack-check.sh inside a throw-away Nest 12 app (outside the repo) that installed the library from its
// `npm pack` tarball. Plain JavaScript ESM, no TypeScript: Nest's decorators are applied as functions.
// It checks the public entry point, starts its own redis-server on a free port (never 6379), boots a Nest
// microservice with RedisStreamsServer and one @EventPattern handler, emits one event with RedisStreamsClient and
// waits (10 s at most) for the handler to get it, closes everything and must then exit by itself (no open handles).
// It also loads the testing entry point (`nestjs-redis-streams-enterprise/testing`, with its types file) and emits a
// second event with its RedisStreamsTestHarness, which must report it handled, then cleans up the keys with it.
// Exit code 0 only if all of that worked.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createConnection, createServer } from 'node:net';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';

const PUBLIC_NAMES = ['RedisStreamsServer', 'RedisStreamsClient', 'RedisStreamsContext', 'RedisStreamsEnterpriseModule', 'ConfigValidator'];
const TESTING_NAMES = ['startTestRedis', 'testConfig', 'testKeyPrefix', 'deleteKeysWithPrefix', 'RedisStreamsTestHarness', 'SettlementTimeoutError', 'TestRedisStartError'];
const PATTERN = 'packcheck.created';
const DELIVERY_TIMEOUT_MS = 10_000;
const redisDir = process.env.PACK_CHECK_REDIS_DIR ?? process.cwd();

// A hard stop, in case anything below hangs (a blocking read that never returns, a close that never resolves).
setTimeout(() => {
  console.error('pack-check.mjs: timed out after 60 s');
  process.exit(1);
}, 60_000).unref();

const log = (message) => console.log(`pack-check.mjs: ${message}`);

async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const server = createServer();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: p } = server.address();
        server.close(() => resolve(p));
      });
    });
    if (port !== 6379) return port;
  }
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(500, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('close', () => resolve(reply.startsWith('+PONG')));
    socket.on('error', () => resolve(false));
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir], {
    stdio: 'ignore',
  });
  writeFileSync(`${redisDir}/redis.pid`, String(child.pid)); // so the shell's cleanup can kill it if we crash
  process.on('exit', () => child.kill('SIGKILL'));
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 5_000;
  while (!(await ping(port))) {
    if (exited || Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

async function main() {
  // 1. The public entry point, loaded through the package's "exports" like any consumer does.
  const lib = await import('nestjs-redis-streams-enterprise');
  const missing = PUBLIC_NAMES.filter((name) => typeof lib[name] !== 'function');
  if (missing.length > 0) throw new Error(`missing public exports: ${missing.join(', ')}`);
  log(`exports ${PUBLIC_NAMES.join(', ')} (${Object.keys(lib).length} names in all)`);
  const { RedisStreamsClient, RedisStreamsContext, RedisStreamsServer } = lib;

  // 1b. The testing entry point, through "exports" too, with the types file its "types" condition names.
  const testing = await import('nestjs-redis-streams-enterprise/testing');
  const missingTesting = TESTING_NAMES.filter((name) => typeof testing[name] !== 'function');
  if (missingTesting.length > 0) throw new Error(`missing exports of nestjs-redis-streams-enterprise/testing: ${missingTesting.join(', ')}`);
  const testingTypes = fileURLToPath(import.meta.resolve('nestjs-redis-streams-enterprise/testing')).replace(/\.js$/, '.d.ts');
  if (!existsSync(testingTypes)) throw new Error(`the testing entry point has no types file (${testingTypes})`);
  log(`testing exports ${TESTING_NAMES.join(', ')}`);

  // 2. A controller with one @EventPattern handler, decorated by hand (what TypeScript would emit).
  const received = [];
  class PackCheckController {
    onCreated(data, ctx) {
      received.push({ data, ctx });
    }
  }
  const method = Object.getOwnPropertyDescriptor(PackCheckController.prototype, 'onCreated');
  EventPattern(PATTERN)(PackCheckController.prototype, 'onCreated', method);
  Payload()(PackCheckController.prototype, 'onCreated', 0);
  Ctx()(PackCheckController.prototype, 'onCreated', 1);
  Controller()(PackCheckController);
  class PackCheckModule {}
  Module({ controllers: [PackCheckController] })(PackCheckModule);

  // 3. Redis, the microservice, a client, one event.
  const redis = await startRedis();
  log(`redis-server at ${redis.url}`);
  const config = { connection: { url: redis.url }, streams: { keyPrefix: 'packcheck' } };
  const app = await NestFactory.createMicroservice(PackCheckModule, {
    strategy: new RedisStreamsServer(config),
    logger: ['error', 'warn'],
  });
  await app.listen();
  const client = new RedisStreamsClient(config);
  const testRedis = await testing.startTestRedis({ url: redis.url });
  const harness = testing.RedisStreamsTestHarness.fromConfig(config, { timeoutMs: DELIVERY_TIMEOUT_MS });
  try {
    await client.connect();
    await lastValueFrom(client.emit(PATTERN, { id: 42, source: 'pack-check' }));
    const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
    while (received.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    if (received.length !== 1) throw new Error(`expected 1 delivery within ${DELIVERY_TIMEOUT_MS} ms, got ${received.length}`);
    const [{ data, ctx }] = received;
    if (data?.id !== 42 || data?.source !== 'pack-check') throw new Error(`unexpected payload ${JSON.stringify(data)}`);
    if (!(ctx instanceof RedisStreamsContext)) throw new Error('the handler did not get a RedisStreamsContext');
    log(`delivered ${JSON.stringify(data)} on ${ctx.getStream()} (entry ${ctx.getEntryId()}, group ${ctx.getGroup()})`);

    // 4. The testing harness: emit and wait until the group acknowledged it.
    const settled = await harness.emitAndWait(PATTERN, { id: 43, source: 'pack-check harness' });
    if (settled.outcome !== 'handled' || received.length !== 2) throw new Error(`harness: unexpected ${JSON.stringify(settled)}, ${received.length} deliveries`);
    log(`harness: entry ${settled.entryId} ${settled.outcome} by group ${settled.group}`);
  } finally {
    await client.close();
    await app.close();
    const deleted = await harness.cleanup();
    await harness.close();
    await testRedis.stop(); // a reused URL: stops nothing
    log(`harness: cleaned up ${deleted} keys`);
    redis.stop();
  }
}

main().then(
  () => {
    // Everything is closed: the process must now end by itself. A leaked socket or timer keeps it alive.
    log('ok, everything closed');
    setTimeout(() => {
      console.error('pack-check.mjs: FAILED: the process did not exit within 5 s after closing the app, client and Redis (open handles)');
      process.exit(1);
    }, 5_000).unref();
  },
  (error) => {
    console.error('pack-check.mjs: FAILED:', error);
    process.exit(1);
  },
);
