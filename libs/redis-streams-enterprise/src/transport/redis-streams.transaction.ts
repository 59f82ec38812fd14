import type { RedisStreamsRecordOptions } from './redis-streams.record.js';
import { InvalidUsageError } from '../errors/invalid-usage.error.js';

/** Redis commands a transaction may run: single-key writes whose first argument is the key. */
const ALLOWED_COMMANDS = new Set([
  'SET', 'DEL', 'INCR', 'INCRBY', 'INCRBYFLOAT', 'DECR', 'DECRBY', 'APPEND', 'EXPIRE', 'PEXPIRE',
  'HSET', 'HDEL', 'HINCRBY', 'HINCRBYFLOAT', 'HSETNX',
  'SADD', 'SREM', 'ZADD', 'ZREM', 'ZINCRBY', 'LPUSH', 'RPUSH', 'LTRIM', 'XADD', 'PFADD', 'SETRANGE',
]);

/** One write of a transaction: a command with its key first. */
export interface TransactionWrite {
  readonly command: string;
  readonly key: string;
  readonly args: readonly string[];
}

/** A message emitted inside a transaction; routed and encoded when the transaction commits. */
export interface TransactionEmit {
  readonly pattern: string;
  readonly data: unknown;
  readonly options: RedisStreamsRecordOptions;
}

/**
 * Writes a handler wants committed together with the acknowledgement of its message (Kafka's consume-transform-
 * produce): all of them and the XACK happen in one Redis script, or none does. If the consumer crashes before the
 * commit, the message is delivered again and the handler runs again with a fresh transaction; a consumer that lost
 * its entry or partition meanwhile (paused, reclaimed) commits nothing. So each write takes effect exactly once.
 *
 * ```ts
 * @StreamEvent('payments.captured')
 * async onCaptured(@Payload() p: Payment, @Ctx() ctx: RedisStreamsContext) {
 *   ctx.transaction()
 *     .call('HINCRBY', `balances:{${p.account}}`, 'cents', String(p.cents))
 *     .emit('ledger.entries', { account: p.account, cents: p.cents });
 * }
 * ```
 * On Redis Cluster every key of a transaction must be in the hash slot of the consumed stream (share its hash tag);
 * a transaction that is not is refused with TransactionCrossSlotError, and the message is retried.
 */
export class RedisStreamsTransaction {
  private readonly writeList: TransactionWrite[] = [];
  private readonly emitList: TransactionEmit[] = [];

  /** Runs a single-key write command at commit time (SET, HINCRBY, RPUSH, ZADD, XADD, ...). */
  call(command: string, key: string, ...args: (string | number)[]): this {
    const name = command.toUpperCase();
    if (!ALLOWED_COMMANDS.has(name)) {
      throw new InvalidUsageError(`${command} cannot run in a transaction; allowed: ${[...ALLOWED_COMMANDS].join(', ')}`);
    }
    if (typeof key !== 'string' || key.length === 0) throw new InvalidUsageError('a transaction write needs a key');
    this.writeList.push({ command: name, key, args: args.map(String) });
    return this;
  }

  /** Emits a message at commit time (to the pattern's stream or partition). */
  emit(pattern: string, data: unknown, options: RedisStreamsRecordOptions = {}): this {
    this.emitList.push({ pattern, data, options });
    return this;
  }

  get writes(): readonly TransactionWrite[] {
    return this.writeList;
  }

  get emits(): readonly TransactionEmit[] {
    return this.emitList;
  }

  get isEmpty(): boolean {
    return this.writeList.length === 0 && this.emitList.length === 0;
  }
}
