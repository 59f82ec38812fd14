import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { ReplayManager, RedisStreamsServer, StreamEvent } from 'nestjs-redis-streams-enterprise';

/** Replay speed: messages read, decoded and dispatched to a handler per second, next to a raw XRANGE + JSON.parse loop. */
export interface ReplayFigures {
  readonly messages: number;
  readonly rawMsgPerSec: number;
  readonly libraryMsgPerSec: number;
  /** Library time per 1,000 messages (the seed claims < 100 ms). */
  readonly libraryMsPer1000: number;
  readonly ratio: number;
}

let handled = 0;

@Controller()
class ReplayBenchController {
  @StreamEvent('bench.replay')
  handle(@Payload() data: { seq: number }) {
    if (data.seq >= 0) handled++;
  }
}

@Module({ controllers: [ReplayBenchController] })
class ReplayBenchModule {}

/** Fills a stream with `messages` library-format entries, then times a raw read and a library replay of all of them. */
export async function measureReplay(url: string, messages: number, payloadBytes: number): Promise<ReplayFigures> {
  const prefix = `bench-replay-${randomUUID().slice(0, 8)}`;
  const stream = `${prefix}:{bench.replay}`;
  const redis = new Redis(url);
  const filler = 'x'.repeat(Math.max(0, payloadBytes - 40));
  for (let i = 0; i < messages; i += 1_000) {
    const pipeline = redis.pipeline();
    for (let seq = i; seq < Math.min(messages, i + 1_000); seq++) {
      pipeline.xadd(stream, '*', 'v', '1', 'pattern', 'bench.replay', 'id', randomUUID(), 'data', JSON.stringify({ seq, filler }));
    }
    await pipeline.exec();
  }

  // Raw: XRANGE pages of 1,000 and JSON.parse of each payload.
  const rawStarted = performance.now();
  let rawCount = 0;
  let from = '-';
  for (;;) {
    const page = await redis.xrange(stream, from, '+', 'COUNT', 1_000);
    for (const [, fields] of page) {
      const data = JSON.parse(fields[fields.indexOf('data') + 1]) as { seq: number };
      if (data.seq >= 0) rawCount++;
    }
    if (page.length < 1_000) break;
    from = `(${page[page.length - 1][0]}`;
  }
  const rawSeconds = (performance.now() - rawStarted) / 1_000;

  // Library: ReplayManager to the handlers of a listening server (decode, safe JSON, Nest dispatch).
  const config = { connection: { url }, streams: { keyPrefix: prefix }, consumer: { group: 'bench', groupStartId: '$' }, replay: { enabled: true, batchSize: 1_000, maxReplayMessages: messages } };
  const server = new RedisStreamsServer(config);
  const app = await NestFactory.createMicroservice(ReplayBenchModule, { strategy: server, logger: false });
  await app.listen();
  const replay = new ReplayManager(config, server);
  handled = 0;
  const started = performance.now();
  const result = await replay.replayMessages({ streamName: 'bench.replay' });
  const librarySeconds = (performance.now() - started) / 1_000;
  await replay.close();
  await app.close();
  await redis.del(stream);
  await redis.quit();
  if (rawCount !== messages || handled !== messages || result.messagesReplayed !== messages) {
    throw new Error(`replay bench: expected ${messages}, raw read ${rawCount}, replayed ${result.messagesReplayed}, handled ${handled}`);
  }
  const rawMsgPerSec = messages / rawSeconds;
  const libraryMsgPerSec = messages / librarySeconds;
  return { messages, rawMsgPerSec, libraryMsgPerSec, libraryMsPer1000: (librarySeconds * 1_000_000) / messages, ratio: libraryMsgPerSec / rawMsgPerSec };
}
