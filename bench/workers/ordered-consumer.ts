/**
 * Library consumer of an ordered topic: a Nest microservice with RedisStreamsServer (partitioning + ordering config)
 * and one @EventPattern handler that records, per key, the last n it saw. The partitions are shared with the other
 * consumer processes of the group through leases; measuring starts once this consumer owns its share.
 * `params.features` (ordering-common.ts featureConfig) also makes it the plain library ('none', one stream) or the library
 * with every feature on ('all', bench/all-features.ts).
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload, type MicroserviceOptions } from '@nestjs/microservices';
import { RedisStreamsServer, SchemaManager, type RedisStreamsContext, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { GROUP, sleep } from '../protocol.js';
import {
  ORDERED_PATTERN,
  featureConfig,
  runOrderedConsumer,
  type OrderedConsumerDriver,
  type OrderedConsumerParams,
  type OrderedPayload,
  type RecordDelivery,
} from './ordering-common.js';

let record: RecordDelivery | undefined;

@Controller()
class OrderedController {
  @EventPattern<string>(ORDERED_PATTERN)
  onEvent(@Payload() payload: OrderedPayload, @Ctx() ctx: RedisStreamsContext): void {
    record?.(payload, ctx.getSequence());
  }
}

@Module({ controllers: [OrderedController] })
class OrderedBenchModule {}

/** Rounds of the coordinator after which an unchanged share counts as settled. */
const STABLE_ROUNDS = 3;
const SETTLE_TIMEOUT_MS = 30_000;

async function init(params: OrderedConsumerParams, deliveries: RecordDelivery): Promise<OrderedConsumerDriver> {
  record = deliveries;
  const config: RedisStreamsEnterpriseConfig = {
    connection: { url: params.redisUrl, ...(params.autoPipelining ? { options: { enableAutoPipelining: true } } : {}) },
    streams: { keyPrefix: params.keyPrefix },
    consumer: {
      group: GROUP,
      groupStartId: '0',
      ...(params.libraryDefaults ? {} : { batchSize: params.batchSize, concurrency: params.concurrency }),
      blockMs: params.blockMs,
      patterns: [params.pattern],
      shutdownTimeoutMs: 5_000,
    },
    ...featureConfig(params),
  };
  // Given to the server (as the module would) so its consume-side validation counts can be reported.
  const schemas = config.schema?.enabled ? new SchemaManager(config) : undefined;
  const server = new RedisStreamsServer(config, { schemas });
  // Warnings stay visible: a lost lease or a retried handler during a benchmark run is worth seeing.
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(OrderedBenchModule, { strategy: server, logger: ['error', 'warn'] });
  await app.init();
  // Without partitioning (feature set 'none') the consumer reads the topic's one stream and there is no share to settle.
  const partitioned = (params.features ?? 'ordering') !== 'none';
  const owned = () => (partitioned ? server.ownedPartitions().map((p) => p.stream).sort() : [params.stream]);
  return {
    async start() {
      await app.listen();
    },
    async settle() {
      // Every consumer of the group runs coordination rounds until it holds its share (floor or ceil of
      // partitions / consumers) and that share stayed the same for a few rounds: no partition moves while measuring.
      if (!partitioned) return owned();
      const low = Math.floor(params.partitions / params.consumers);
      const high = Math.ceil(params.partitions / params.consumers);
      const deadline = Date.now() + SETTLE_TIMEOUT_MS;
      let previous = '';
      let stable = 0;
      while (stable < STABLE_ROUNDS) {
        if (Date.now() > deadline) throw new Error(`partition share not settled within ${SETTLE_TIMEOUT_MS} ms (owns ${owned().join(', ') || 'nothing'})`);
        await server.rebalanceNow();
        const now = owned();
        const key = now.join(',');
        stable = now.length >= low && now.length <= high && key === previous ? stable + 1 : 0;
        previous = key;
        await sleep(50);
      }
      return owned();
    },
    owned,
    ackedCount: () => server.getMetrics().acked,
    counters() {
      const m = server.getMetrics();
      return {
        failed: m.failed,
        retried: m.retried,
        deadLettered: m.deadLettered,
        reclaimed: m.reclaimed,
        fencedCommits: m.fencedCommits,
        duplicatesSkipped: m.duplicatesSkipped,
        lostToTrimming: m.lostToTrimming,
        schemaInvalid: m.schemaInvalid,
      };
    },
    schemaValidated: schemas ? () => schemas.getMetrics().consume.valid : undefined,
    async stop() {
      await app.close();
      await schemas?.close();
    },
  };
}

void runOrderedConsumer(init);
