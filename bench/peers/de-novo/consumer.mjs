/**
 * Peer consumer: @de-novo/nestjs-redis-streams (its RedisStreamServer as the strategy of a Nest 10 microservice,
 * from this folder's node_modules) with one counting @EventPattern handler, as its README shows. Its stream key is
 * the pattern itself. Plain ESM so that Nest resolves from here; the lifecycle is the bench's compiled harness.
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, Payload } from '@nestjs/microservices';
import { RedisStreamServer } from '@de-novo/nestjs-redis-streams';
import { hostname } from 'node:os';
import { GROUP, sleep } from '../../../dist/bench/protocol.js';
import { runConsumerWorker } from '../../../dist/bench/workers/consumer-harness.js';

let stopping = false;
// Its read loop has no catch: closing the connection under a pending XREADGROUP rejects with nobody listening.
process.on('unhandledRejection', (error) => {
  if (!stopping) process.send?.({ type: 'error', message: `unhandled rejection: ${error?.message ?? error}` });
});

async function init(params, counter) {
  class BenchController {
    onEvent(payload) {
      counter.record(payload.seq, payload.sentAt);
    }
  }
  const proto = BenchController.prototype;
  Payload()(proto, 'onEvent', 0);
  EventPattern(params.pattern)(proto, 'onEvent', Object.getOwnPropertyDescriptor(proto, 'onEvent'));
  Controller()(BenchController);
  class BenchModule {}
  Module({ controllers: [BenchController] })(BenchModule);

  const server = new RedisStreamServer({
    connection: { path: params.redisUrl, ...(params.autoPipelining ? { options: { enableAutoPipelining: true } } : {}) },
    streams: { consumer: `${hostname()}-${process.pid}-de-novo`, consumerGroup: GROUP, block: params.blockMs },
  });
  const app = await NestFactory.createMicroservice(BenchModule, { strategy: server, logger: false });
  await app.init();
  let acked = 0;
  return {
    async start() {
      await app.listen();
      // Count what Redis acknowledged (it sends XACK once per message, sometimes twice; the reply says which counted).
      const client = server.client;
      const xack = client.xack.bind(client);
      client.xack = async (...args) => {
        const n = await xack(...args);
        acked += Number(n);
        return n;
      };
      // listen() returns before its XGROUP CREATE ... $ ran; entries added before would be skipped, so wait for it.
      for (let i = 0; i < 500; i++) {
        const groups = await client.xinfo('GROUPS', params.pattern).catch(() => []);
        if (groups.length > 0) return [params.pattern];
        await sleep(10);
      }
      throw new Error(`no consumer group on ${params.pattern} after 5 s`);
    },
    ackedCount: () => acked,
    async stop() {
      stopping = true;
      await app.close();
    },
  };
}

void runConsumerWorker(init);
