/**
 * Peer producer: RedisStreamClient of @de-novo/nestjs-redis-streams, `emit(pattern, { value, headers })` as its
 * README shows. Its emit() never completes for an event (the client waits for a correlated reply and keeps an entry
 * for it), so, to keep the same number of sends in flight as the others, each send waits for the reply of the XADD
 * the client makes: the client's handleXadd is wrapped to signal it (a measurement hook; nothing else changes).
 */
import 'reflect-metadata';
import { RedisStreamClient } from '@de-novo/nestjs-redis-streams';
import { Logger } from '@nestjs/common';
import { GROUP, makePayload } from '../../../dist/bench/protocol.js';
import { runProducerWorker } from '../../../dist/bench/workers/producer-harness.js';

Logger.overrideLogger(false);

async function init(params) {
  const client = new RedisStreamClient({
    connection: { path: params.redisUrl, ...(params.autoPipelining ? { options: { enableAutoPipelining: true } } : {}) },
    streams: { consumer: `producer-${process.pid}`, consumerGroup: GROUP },
  });
  await client.connect();
  const waiting = [];
  const handleXadd = client.handleXadd.bind(client);
  client.handleXadd = async (stream, fields) => {
    const id = await handleXadd(stream, fields); // it logs and swallows a failure (undefined)
    // ioredis answers one connection's commands in order, so the oldest waiting send is the one answered.
    const send = waiting.shift();
    if (id) send?.resolve(id);
    else send?.reject(new Error('XADD failed (the client logged it and closed its connections)'));
    return id;
  };
  return {
    sendOne: (seq, pad) =>
      new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        client.emit(params.pattern, { value: makePayload(seq, pad), headers: {} });
      }),
    async close() {
      await client.close();
    },
  };
}

void runProducerWorker(init);
