import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { disconnectOnce } from '../connection/redis-connection.factory.js';
import { parseReadReply } from '../connection/redis-replies.js';
import { errorText } from '../observability/log-format.js';
import { decodeReply, type ReplyMessage } from '../wire/envelope.js';
import { Sleeper } from '../runtime/sleeper.js';

/**
 * Reads one client's reply stream with XREAD (no group: the stream belongs to this client instance alone) and
 * hands each reply to `onReply`. Reading starts at 0-0 on a stream named after a fresh client id, so a reply
 * written before the first XREAD arrives is not missed; afterwards it continues from the last id seen, also
 * across reconnects.
 */
export class ReplyListener {
  private readonly logger = new Logger('RedisStreamsClient');
  private running = false;
  private loop?: Promise<void>;
  private lastId = '0-0';
  private failing = false;
  private readonly sleeper = new Sleeper();

  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
    private readonly blockMs: number,
    private readonly onReply: (reply: ReplyMessage) => void,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.sleeper.wake();
    disconnectOnce(this.redis);
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let raw: unknown;
      try {
        raw = await this.redis.xread('COUNT', 256, 'BLOCK', this.blockMs, 'STREAMS', this.stream, this.lastId);
      } catch (error) {
        if (!this.running) return;
        if (!this.failing) {
          this.failing = true;
          this.logger.warn(`Reading replies failed, retrying: ${errorText(error)}`);
        }
        await this.sleeper.sleep(500);
        continue;
      }
      this.failing = false;
      for (const entry of parseReadReply(raw)) {
        this.lastId = entry.id;
        let reply: ReplyMessage | null = null;
        try {
          reply = decodeReply(entry.fields);
        } catch (error) {
          this.logger.warn(`Ignoring an undecodable reply id=${entry.id}: ${errorText(error)}`);
        }
        if (reply) this.onReply(reply);
      }
    }
  }

}
