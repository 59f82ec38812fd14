import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { blockingRead } from '../connection/blocking-read.js';
import { disconnectOnce } from '../connection/redis-connection.factory.js';
import { parseReadReply } from '../connection/redis-replies.js';
import { errorText } from '../observability/log-format.js';
import { decodeReply, toWireError, type ReplyMessage } from '../wire/envelope.js';
import { BackgroundLoop } from '../runtime/background-loop.js';

/** Pause after a failed read before the next (ioredis reconnects meanwhile). */
const READ_RETRY_MS = 500;

/**
 * Reads one client's reply stream with XREAD (no group: the stream belongs to this client instance alone) and
 * hands each reply to `onReply`. Reading starts at 0-0 on a stream named after a fresh client id, so a reply
 * written before the first XREAD arrives is not missed; afterwards it continues from the last id seen, also
 * across reconnects.
 */
export class ReplyListener {
  private readonly logger = new Logger('RedisStreamsClient');
  private lastId = '0-0';
  /** One XREAD per iteration; a failed one is logged once and retried after READ_RETRY_MS. */
  private readonly loop: BackgroundLoop;

  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
    private readonly blockMs: number,
    private readonly onReply: (reply: ReplyMessage) => void,
    private readonly options: {
      /** Extra time a read may take beyond its BLOCK before its connection is presumed dead (`connection.blockingWatchdogMs`). */
      readonly watchdogMs: number;
      /** Undoes a reply's encryption (PayloadCodec.decodeReply); a reply that cannot be opened fails its request. */
      readonly open?: (fields: Record<string, string>) => Promise<Record<string, string>>;
    },
  ) {
    this.loop = new BackgroundLoop(() => this.readOnce(), {
      intervalMs: 0,
      retryMs: READ_RETRY_MS,
      onFailing: (error) => this.logger.warn(`Reading replies failed, retrying: ${errorText(error)}`),
    });
  }

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    const stopped = this.loop.stop();
    disconnectOnce(this.redis);
    await stopped;
  }

  private async readOnce(): Promise<void> {
    // A reset socket drops a pending blocking read without settling it (blocking reads are not re-sent): the
    // watchdog fails it at once on 'close' (or after BLOCK + watchdogMs on a half-open link), so replies keep being
    // read after a reconnect and stop() never waits for a read that will not come back.
    const raw = await blockingRead(this.redis, () => this.redis.xread('COUNT', 256, 'BLOCK', this.blockMs, 'STREAMS', this.stream, this.lastId), this.blockMs + this.options.watchdogMs);
    for (const entry of parseReadReply(raw)) {
      this.lastId = entry.id;
      let reply: ReplyMessage | null = null;
      let fields = entry.fields;
      try {
        if (this.options.open) fields = await this.options.open(fields);
      } catch (error) {
        // The caller learns why its request failed instead of waiting for its timeout; the reason holds no plaintext.
        if (fields.id !== undefined) this.onReply({ requestId: fields.id, done: true, err: toWireError(error) });
        continue;
      }
      try {
        reply = decodeReply(fields);
      } catch (error) {
        this.logger.warn(`Ignoring an undecodable reply id=${entry.id}: ${errorText(error)}`);
      }
      if (reply) this.onReply(reply);
    }
  }
}
