/**
 * Scripted publishes (an idempotency key, a global sequence number, a layout epoch) gathered per stream and sent as
 * one publishBatch script call (connection/scripts/publish.scripts.ts) instead of one script call each: a script run
 * costs Redis several times an XADD, and each call costs the producer a command of its own, so under global ordering
 * or exactly-once the producer and Redis, not the consumer, were the bound.
 *
 * A message waits at most until the end of the current event-loop turn (setImmediate), which is when every emit
 * started in the same turn has reached here; a stream's batch is sent at once when it reaches MAX_ENTRIES or
 * MAX_BYTES. Order: entries of one stream are appended in the order `add` was called, and a write of the same stream
 * that is not batched (a plain XADD, a claim-checked payload, a write waiting for replicas) first sends the stream's
 * batch (`flush(stream)`), so the emits of a producer keep their order on a connection whatever path each one takes.
 */
import type { ScriptedRedis } from '../connection/scripts.js';

/** Largest batch (messages); a run of emits longer than this goes in several calls, pipelined on the connection. */
const MAX_ENTRIES = 128;
/** Largest batch (bytes of field values, roughly): bounds the script's argument list Redis holds in memory. */
const MAX_BYTES = 1024 * 1024;

export interface BatchedMessage {
  readonly fields: readonly string[];
  /** Key of the idempotency record (StreamKeys.publishedOf), when the message has an idempotency key. */
  readonly recordKey?: string;
  readonly epoch?: number;
}

/** One message's result: as the publish script's, or an error reply of its XADD. */
export type BatchedResult = { status: 'ok' | 'duplicate' | 'stale'; id: string } | { status: 'error'; reason: string };

/** What every message of a stream's batch shares. */
export interface BatchShape {
  readonly sequenceKey: string;
  readonly epochKey: string;
  readonly windowMs: number;
  readonly sequence: boolean;
  /** [] or [kind, '~', threshold] (EntryPublisher.trimArgs). */
  readonly trim: readonly (string | number)[];
}

interface Queued {
  readonly message: BatchedMessage;
  readonly resolve: (result: BatchedResult) => void;
  readonly reject: (error: unknown) => void;
}

interface StreamBatch {
  readonly command: ScriptedRedis;
  readonly shape: BatchShape;
  queued: Queued[];
  bytes: number;
}

export class PublishBatcher {
  private readonly batches = new Map<string, StreamBatch>();
  private scheduled?: NodeJS.Immediate;

  /** Queues one message of `stream`; resolves with its result once its batch's reply came. */
  add(command: ScriptedRedis, stream: string, shape: BatchShape, message: BatchedMessage): Promise<BatchedResult> {
    let batch = this.batches.get(stream);
    if (batch && (batch.command !== command || !sameShape(batch.shape, shape))) {
      this.flush(stream);
      batch = undefined;
    }
    if (!batch) {
      batch = { command, shape, queued: [], bytes: 0 };
      this.batches.set(stream, batch);
    }
    const target = batch;
    const result = new Promise<BatchedResult>((resolve, reject) => target.queued.push({ message, resolve, reject }));
    for (const value of message.fields) target.bytes += value.length;
    if (target.queued.length >= MAX_ENTRIES || target.bytes >= MAX_BYTES) this.flush(stream);
    else this.scheduled ??= setImmediate(() => this.flushAll());
    return result;
  }

  /** Sends the stream's queued messages now (before a write of the stream that is not batched). */
  flush(stream: string): void {
    const batch = this.batches.get(stream);
    if (!batch) return;
    this.batches.delete(stream);
    void this.send(stream, batch);
  }

  /** Sends every queued message now (the client's close, the end of the turn). */
  flushAll(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    for (const stream of [...this.batches.keys()]) this.flush(stream);
  }

  private async send(stream: string, batch: StreamBatch): Promise<void> {
    const { shape, queued } = batch;
    const keys: string[] = [stream, shape.sequenceKey, shape.epochKey];
    const args: (string | number)[] = [shape.windowMs, shape.sequence ? '1' : '0', shape.trim[0] ?? '', shape.trim[2] ?? ''];
    for (const { message } of queued) {
      let recordAt = 0;
      if (message.recordKey !== undefined) {
        keys.push(message.recordKey);
        recordAt = keys.length;
      }
      args.push(recordAt, message.epoch === undefined ? '' : message.epoch, message.fields.length);
      for (const value of message.fields) args.push(value);
    }
    let reply: unknown;
    try {
      reply = await batch.command.rsePublishBatch(keys.length, ...keys, ...args);
    } catch (error) {
      for (const q of queued) q.reject(error);
      return;
    }
    const values = reply as string[];
    queued.forEach((q, i) => {
      const status = values[2 * i];
      const value = String(values[2 * i + 1]);
      if (status === 'ok' || status === 'duplicate' || status === 'stale') q.resolve({ status, id: value });
      else q.resolve({ status: 'error', reason: value });
    });
  }
}

function sameShape(a: BatchShape, b: BatchShape): boolean {
  return (
    a.sequence === b.sequence &&
    a.windowMs === b.windowMs &&
    a.sequenceKey === b.sequenceKey &&
    a.epochKey === b.epochKey &&
    // A MINID threshold moves with the clock: the batch trims by its first message's (the older, so never more).
    a.trim[0] === b.trim[0] &&
    (a.trim[0] === 'MINID' || a.trim[2] === b.trim[2])
  );
}
