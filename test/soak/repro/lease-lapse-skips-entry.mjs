// Reproduction (found by the soak, seed 7, single topology): on a partitioned, ordered topic, an entry read while the
// consumer's partition lease has lapsed *locally* (PartitionCoordinator.holds() is false: the renewal's reply is late)
// is skipped — PartitionedConsumer.process() returns without handling it, "it stays pending for the new owner". When
// the late renewal then succeeds, the same consumer keeps the partition: there is no new owner, no takeover, and the
// sweep only looks for entries pending for *other* consumers. The entry stays in this consumer's PEL for good, and
// the next messages of its key are handled after it: one resolved emit lost, per-key order broken (a gap).
// The stalls below hold the link for about 2/3 of sessionTimeoutMs, so that the renewal reaches Redis before the lease
// expires there but its reply arrives after the local validity (10 % shorter) ran out.
// Run: npm run build:lib && npx tsc -p test/soak/tsconfig.json && node test/soak/repro/lease-lapse-skips-entry.mjs
// Exit 1: an entry was left pending and later messages of its key were handled (the bug); 0: not reproduced.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { RedisProcess } from '../../support/redis-process.mjs';
import { TcpProxy } from '../../../dist/soak/test/support/tcp-proxy.js';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const SESSION_MS = 1_500;
const redis = await RedisProcess.start({});
const proxy = await TcpProxy.start('127.0.0.1', redis.port);
const base = {
  streams: { keyPrefix: 'repro' },
  consumer: { group: 'g', blockMs: 100 },
  ordering: { enabled: true, strategy: 'partition', partitionKey: 'key' },
  partitioning: { enabled: true, partitionCount: 1, partitionKey: 'key', sessionTimeoutMs: SESSION_MS },
};
const handled = [];

class Jobs {
  handle(data) {
    handled.push(data.n);
  }
}
Payload()(Jobs.prototype, 'handle', 0);
Ctx()(Jobs.prototype, 'handle', 1);
EventPattern('jobs')(Jobs.prototype, 'handle', Object.getOwnPropertyDescriptor(Jobs.prototype, 'handle'));
Controller()(Jobs);
class AppModule {}
Module({ controllers: [Jobs] })(AppModule);

// The consumer goes through the proxy; the producer and the checks go to Redis directly.
const server = new RedisStreamsServer({ ...base, connection: { url: proxy.url, blockingWatchdogMs: 1_000 } });
const app = await NestFactory.createMicroservice(AppModule, { strategy: server, logger: ['error'] });
await app.listen();
const producer = new RedisStreamsClient({ ...base, connection: { url: redis.url } });
const raw = new Redis(redis.port, '127.0.0.1');

let emitting = true;
let sent = 0;
const emitter = (async () => {
  while (emitting) {
    await lastValueFrom(producer.emit('jobs', { key: 'k', n: sent }));
    sent++;
    await sleep(10);
  }
})();
for (let round = 0; round < 40; round++) {
  await sleep(700 + Math.random() * 500);
  proxy.setMode('stall');
  await sleep(SESSION_MS * (0.55 + Math.random() * 0.15));
  proxy.setMode('pass');
}
emitting = false;
await emitter;
// Let everything drain (well past a session timeout and a sweep).
for (let last = -1, still = 0; still < 5 && handled.length < sent * 3; await sleep(1_000)) {
  still = handled.length === last ? still + 1 : 0;
  last = handled.length;
}
const seen = new Set(handled);
const missing = [...Array(sent).keys()].filter((n) => !seen.has(n));
const pending = await raw.xpending('repro:{jobs#0}', 'g', '-', '+', 10);
const laterHandled = missing.length > 0 && handled.some((n) => n > missing[0]);
console.log(`sent ${sent}, handled ${handled.length} (${seen.size} distinct), never handled: [${missing.slice(0, 10).join(', ')}]`);
console.log(`still pending after the drain: ${JSON.stringify(pending)}`);
console.log(laterHandled ? `BUG: message ${missing[0]} of key "k" is stuck pending while later messages of the key were handled` : 'not reproduced');
await app.close();
await producer.close();
raw.disconnect();
await proxy.close();
await redis.stop();
process.exit(laterHandled ? 1 : 0);
