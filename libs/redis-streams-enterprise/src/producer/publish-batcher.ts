/**
 * The writes of one event-loop turn, gathered per stream and sent together: scripted publishes (an idempotency key, a
 * global sequence number, a layout epoch) as one publishBatch script call (connection/scripts/publish.scripts.ts)
 * instead of one script call each, plain XADDs issued together (one socket write for all of them on a single server,
 * each still its own command with its own reply). A script run
 * costs Redis several times an XADD and every command costs the producer a write of its own, so the producer and Redis,
 * not the consumer, were the bound.
 *
 * A message waits at most until the end of the current turn (setImmediate), when every emit started in the same turn
 * has reached here; a stream's batch is sent at once when it reaches MAX_ENTRIES or MAX_BYTES. Order: a stream's
 * messages are sent in the order `add`/`addPlain` were called (issued in order on one connection), and a write
 * of the same stream that is not batched (a claim-checked payload, a write waiting for replicas) first sends the
 * stream's batch (`flush(stream)`), so the emits of a producer keep their order whatever path each one takes.
 */
import type { Writable } from 'node:stream';
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

/** What every scripted message of a stream's batch shares. */
export interface BatchShape {
  readonly sequenceKey: string;
  readonly epochKey: string;
  readonly windowMs: number;
  readonly sequence: boolean;
  /** [] or [kind, '~', threshold] (EntryPublisher.trimArgs). */
  readonly trim: readonly (string | number)[];
}

interface Settle {
  readonly resolve: (result: BatchedResult) => void;
  readonly reject: (error: unknown) => void;
}

/** A queued write: scripted (`message`) or a plain XADD (`xadd`: its arguments after the key). */
type Queued = Settle & ({ readonly message: BatchedMessage; readonly xadd?: undefined } | { readonly xadd: readonly (string | number)[]; readonly message?: undefined });

interface StreamBatch {
  readonly command: ScriptedRedis;
  /** Shape of the scripted messages (undefined while there are none). */
  shape?: BatchShape;
  queued: Queued[];
  bytes: number;
}

export class PublishBatcher {
  private readonly batches = new Map<string, StreamBatch>();
  private scheduled?: NodeJS.Immediate;

  /** Queues one scripted message of `stream`; resolves with its result once its batch's reply came. */
  add(command: ScriptedRedis, stream: string, shape: BatchShape, message: BatchedMessage): Promise<BatchedResult> {
    const batch = this.batchOf(command, stream, shape);
    batch.shape ??= shape;
    return this.queue(stream, batch, message.fields, (settle) => ({ ...settle, message }));
  }

  /** Queues one plain XADD of `stream` (`trim` as EntryPublisher.trimArgs); resolves with its entry id. */
  addPlain(command: ScriptedRedis, stream: string, trim: readonly (string | number)[], fields: readonly string[]): Promise<BatchedResult> {
    const batch = this.batchOf(command, stream, undefined);
    return this.queue(stream, batch, fields, (settle) => ({ ...settle, xadd: [...trim, '*', ...fields] }));
  }

  /** Sends the stream's queued messages now (before a write of the stream that is not batched). */
  flush(stream: string): void {
    const batch = this.batches.get(stream);
    if (!batch) return;
    this.batches.delete(stream);
    const socket = socketOf(batch.command);
    socket?.cork();
    this.send(stream, batch);
    socket?.uncork();
  }

  /** Sends every queued message now (the client's close, the end of the turn): one socket write per connection. */
  flushAll(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const sockets = new Set<Writable>();
    for (const [stream, batch] of [...this.batches]) {
      this.batches.delete(stream);
      // cork() counts: once per socket, as many uncork() calls below.
      const socket = socketOf(batch.command);
      if (socket && !sockets.has(socket)) {
        socket.cork();
        sockets.add(socket);
      }
      this.send(stream, batch);
    }
    for (const socket of sockets) socket.uncork();
  }

  /** The stream's open batch, after sending the one there is when it cannot take this write. */
  private batchOf(command: ScriptedRedis, stream: string, shape: BatchShape | undefined): StreamBatch {
    let batch = this.batches.get(stream);
    if (batch && (batch.command !== command || (shape && batch.shape && !sameShape(batch.shape, shape)))) {
      this.flush(stream);
      batch = undefined;
    }
    if (!batch) {
      batch = { command, queued: [], bytes: 0 };
      this.batches.set(stream, batch);
    }
    return batch;
  }

  private queue(stream: string, batch: StreamBatch, fields: readonly string[], make: (settle: Settle) => Queued): Promise<BatchedResult> {
    const result = new Promise<BatchedResult>((resolve, reject) => batch.queued.push(make({ resolve, reject })));
    for (const value of fields) batch.bytes += value.length;
    if (batch.queued.length >= MAX_ENTRIES || batch.bytes >= MAX_BYTES) this.flush(stream);
    else this.scheduled ??= setImmediate(() => this.flushAll());
    return result;
  }

  /**
   * Issues the batch's commands at once, in order, each with its own reply: a run of scripted messages as one
   * publishBatch call, each plain message as its own XADD (so each fails or succeeds on its own, as unbatched).
   */
  private send(stream: string, batch: StreamBatch): void {
    const { command, queued } = batch;
    for (let i = 0; i < queued.length; ) {
      const first = queued[i]!;
      if (first.xadd) {
        i++;
        command.xadd(stream, ...first.xadd).then(
          (id) => first.resolve({ status: 'ok', id: id as string }),
          (error: unknown) => first.reject(error),
        );
        continue;
      }
      let end = i + 1;
      while (end < queued.length && queued[end]!.message) end++;
      const part = queued.slice(i, end);
      i = end;
      let call: Promise<unknown>;
      try {
        call = command.rsePublishBatch(...scriptArgs(stream, batch.shape!, part));
      } catch (error) {
        call = Promise.reject(error);
      }
      call.then(
        (reply) => settleScripted(part, reply),
        (error: unknown) => {
          for (const q of part) q.reject(error);
        },
      );
    }
  }
}

/**
 * The socket of a ready single-server connection, to cork while a batch is issued (every command goes out in one
 * write at uncork); undefined on a Redis Cluster, whose commands go to node connections (one write each).
 */
function socketOf(command: ScriptedRedis): Writable | undefined {
  const socket = (command as { stream?: Writable }).stream;
  if (!socket || typeof socket.cork !== 'function' || command.status !== 'ready') return undefined;
  return socket;
}

/** numkeys, KEYS and ARGV of publishBatch for scripted messages (see its comment for the layout). */
function scriptArgs(stream: string, shape: BatchShape, queued: readonly Queued[]): (string | number)[] {
  const keys: string[] = [stream, shape.sequenceKey, shape.epochKey];
  const args: (string | number)[] = [shape.windowMs, shape.sequence ? '1' : '0', shape.trim[0] ?? '', shape.trim[2] ?? ''];
  for (const { message } of queued) {
    let recordAt = 0;
    if (message!.recordKey !== undefined) {
      keys.push(message!.recordKey);
      recordAt = keys.length;
    }
    args.push(recordAt, message!.epoch === undefined ? '' : message!.epoch, message!.fields.length);
    for (const value of message!.fields) args.push(value);
  }
  return [keys.length, ...keys, ...args];
}

function settleScripted(queued: readonly Queued[], reply: unknown): void {
  const values = reply as string[];
  queued.forEach((q, i) => {
    const status = values[2 * i];
    const value = String(values[2 * i + 1]);
    if (status === 'ok' || status === 'duplicate' || status === 'stale') q.resolve({ status, id: value });
    else q.resolve({ status: 'error', reason: value });
  });
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
