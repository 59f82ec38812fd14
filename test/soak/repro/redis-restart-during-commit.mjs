// Reproduction (found by the soak: seed 5, cluster topology, a primary killed during commits; there a later message of
// a key was committed before an earlier one). Ordered (per key), exactly-once, partitioned topic; Redis is killed
// (kill -9) while the handler of message 1 runs and restarted from its AOF 1.5 s later; the handler's commit
// (ctx.transaction() + ack) comes after. Expected: every message of key "k" handled once, effects in order 0..5.
// Seen (2 runs of 2): 0 and 1 are committed, then messages 2..5 are delivered to the same consumer (XPENDING:
// deliveries 1, idle for a minute) and never handled: the key is stuck with nothing left to unblock it.
// `drop` instead of `restart` (connections reset, Redis stays up) passes.
// Run: npm run build:lib && npx tsc -p test/soak/tsconfig.json && node test/soak/repro/redis-restart-during-commit.mjs [restart|drop]
// Exit 1: effects missing or out of order after 60 s (the bug); 0: all in order.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { RedisProcess } from '../../support/redis-process.mjs';
import { TcpProxy } from '../../../dist/soak/test/support/tcp-proxy.js';

const mode = process.argv[2] ?? 'restart';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const redis = await RedisProcess.start({ appendonly: true });
const proxy = await TcpProxy.start('127.0.0.1', redis.port);
const base = {
  streams: { keyPrefix: 'repro' },
  consumer: { group: 'g', blockMs: 100, claimIdleMs: 1_000, reclaimIntervalMs: 100 },
  retry: { attempts: 5, backoff: { type: 'fixed', delayMs: 100, maxDelayMs: 100, jitter: 0 } },
  ordering: { enabled: true, strategy: 'partition', partitionKey: 'key' },
  partitioning: { enabled: true, partitionCount: 1, partitionKey: 'key', sessionTimeoutMs: 10_000 },
  exactlyOnce: { enabled: true },
};
const EFFECTS = 'repro:{jobs#0}:effects';
const log = [];
let faultDone;
let faulted = false;

class Jobs {
  async handle(data, ctx) {
    log.push(`start ${data.n} dc=${ctx.getDeliveryCount()}`);
    if (data.n === 1 && !faulted) {
      faulted = true;
      // Redis goes away while this handler runs; its commit (transaction + ack) comes after.
      faultDone = (async () => {
        if (mode === 'drop') {
          proxy.setMode('drop');
          proxy.setMode('pass');
        } else {
          await redis.kill();
          await sleep(1_500);
          await redis.restart();
        }
      })();
      await sleep(300);
    }
    ctx.transaction().call('RPUSH', EFFECTS, String(data.n));
    log.push(`end ${data.n}`);
  }
}
Payload()(Jobs.prototype, 'handle', 0);
Ctx()(Jobs.prototype, 'handle', 1);
EventPattern('jobs')(Jobs.prototype, 'handle', Object.getOwnPropertyDescriptor(Jobs.prototype, 'handle'));
Controller()(Jobs);
class AppModule {}
Module({ controllers: [Jobs] })(AppModule);

const server = new RedisStreamsServer({ ...base, connection: { url: proxy.url, blockingWatchdogMs: 1_000 } });
const app = await NestFactory.createMicroservice(AppModule, { strategy: server, logger: ['error'] });
await app.listen();
const producer = new RedisStreamsClient({ ...base, connection: { url: redis.url } });
const N = 6;
for (let n = 0; n < N; n++) {
  for (;;) {
    try {
      await lastValueFrom(producer.emit('jobs', { key: 'k', n }));
      break;
    } catch {
      await sleep(200); // Redis is being restarted: the emit certainly failed (RedisUnavailableError), send again
    }
  }
  await sleep(150);
}
await faultDone;
const raw = new Redis(redis.port, '127.0.0.1');
let effects = [];
for (let i = 0; i < 300 && effects.length < N; i++, await sleep(200)) effects = await raw.lrange(EFFECTS, 0, -1);
console.log('XINFO GROUPS', JSON.stringify(await raw.call('XINFO', 'GROUPS', 'repro:{jobs#0}')), 'XLEN', await raw.xlen('repro:{jobs#0}'), 'XPENDING', JSON.stringify(await raw.xpending('repro:{jobs#0}', 'g', '-', '+', 10)));
const inOrder = effects.join(',') === [...Array(N).keys()].join(',');
console.log(`mode ${mode}; handler log: ${log.join(' | ')}`);
console.log(`effects of key k in commit order: [${effects.join(', ')}] -> ${inOrder ? 'all, in order' : 'BUG: missing or out of order'}`);
await app.close();
await producer.close();
raw.disconnect();
await proxy.close();
await redis.stop();
process.exit(inOrder ? 0 : 1);
