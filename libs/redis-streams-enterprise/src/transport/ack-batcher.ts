import type { Redis } from 'ioredis';

interface PendingAck {
  ids: string[];
  resolvers: { resolve: () => void; reject: (error: unknown) => void }[];
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

  constructor(
    private readonly redis: Redis,
    private readonly group: string,
    private readonly onAcked: (count: number) => void,
  ) {}

  ack(stream: string, id: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let batch = this.pending.get(stream);
      if (!batch) {
        batch = { ids: [], resolvers: [] };
        this.pending.set(stream, batch);
      }
      batch.ids.push(id);
      batch.resolvers.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Sends everything collected so far and waits for every XACK in flight. */
  async flushAll(): Promise<void> {
    this.flush();
    while (this.flushing.size > 0) await Promise.all([...this.flushing]);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const batches = this.pending;
    this.pending = new Map();
    for (const [stream, batch] of batches) {
      const done = this.redis
        .xack(stream, this.group, ...batch.ids)
        .then(
          () => {
            this.onAcked(batch.ids.length);
            for (const r of batch.resolvers) r.resolve();
          },
          (error: unknown) => {
            for (const r of batch.resolvers) r.reject(error);
          },
        )
        .finally(() => this.flushing.delete(done));
      this.flushing.add(done);
    }
  }
}
