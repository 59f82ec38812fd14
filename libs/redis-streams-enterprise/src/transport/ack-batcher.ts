import type { Redis } from 'ioredis';
import { asStreamCommands, type StreamCommands } from '../connection/stream-commands.js';

/** How long a failed XACK waits for the reconnect before it gives up (the entry is then redelivered later). */
const RETRY_ACK_WITHIN_MS = 5_000;

interface PendingAck {
  readonly ids: string[];
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

function newBatch(): PendingAck {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Every ack() caller awaits `done`; this only keeps a batch nobody awaits from being an unhandled rejection.
  done.catch(() => undefined);
  return { ids: [], done, resolve, reject };
}

/**
 * Collects acknowledgements made in the same turn of the event loop and sends one multi-id XACK per stream.
 * Each caller's promise settles when its XACK was answered, so "acknowledged" always means "Redis said so".
 * The batch is bounded by the number of entries in flight.
 */
export class AckBatcher {
  private pending = new Map<string, PendingAck>();
  private scheduled = false;
  private readonly flushing = new Set<Promise<void>>();
  private readonly commands: StreamCommands;

  /**
   * @param flushSoon `microtask`: send at the end of the current job (ordered topics, where the next message of a
   * lane waits for this ack, so a turn of the event loop per message would be its main cost); `immediate`: after the
   * I/O callbacks of this turn (more acks per XACK when many handlers finish together).
   * @param commands the command port, or the server's command connection (wrapped in the port).
   */
  constructor(
    commands: StreamCommands | Redis,
    private readonly group: string,
    private readonly onAcked: (count: number) => void,
    private readonly flushSoon: 'microtask' | 'immediate' = 'immediate',
  ) {
    this.commands = asStreamCommands(commands);
  }

  ack(stream: string, id: string): Promise<void> {
    let batch = this.pending.get(stream);
    if (!batch) {
      batch = newBatch();
      this.pending.set(stream, batch);
    }
    batch.ids.push(id);
    if (!this.scheduled) {
      this.scheduled = true;
      if (this.flushSoon === 'microtask') queueMicrotask(() => this.flush());
      else setImmediate(() => this.flush());
    }
    return batch.done;
  }

  /** Sends everything collected so far and waits for every XACK in flight. */
  async flushAll(): Promise<void> {
    this.flush();
    while (this.flushing.size > 0) await Promise.all([...this.flushing]);
  }

  /**
   * XACK is idempotent, so one that failed because the connection dropped is sent again once it is back (bounded
   * wait): otherwise every entry of the batch would be redelivered as a duplicate.
   */
  private async xackWithOneRetry(stream: string, ids: string[]): Promise<unknown> {
    try {
      return await this.commands.ack(stream, this.group, ids);
    } catch (error) {
      if (this.commands.isClosed()) throw error;
      await this.commands.whenReady(RETRY_ACK_WITHIN_MS).catch(() => {
        throw error;
      });
      return this.commands.ack(stream, this.group, ids);
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const batches = this.pending;
    this.pending = new Map();
    for (const [stream, batch] of batches) {
      const done = this.xackWithOneRetry(stream, batch.ids)
        .then(
          () => {
            this.onAcked(batch.ids.length);
            batch.resolve();
          },
          (error: unknown) => batch.reject(error),
        )
        .finally(() => this.flushing.delete(done));
      this.flushing.add(done);
    }
  }
}
