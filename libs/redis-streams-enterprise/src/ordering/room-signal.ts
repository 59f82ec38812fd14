/**
 * Tells the partition reader when a partition queue has room again. A waiter may name the partitions it waits for:
 * the reader blocks on the partitions that have room and must end that read as soon as one of those it left out
 * (their queues full) can take entries again; room in a partition it is already reading is no reason to.
 */
export class RoomSignal {
  private readonly waiters = new Set<{ readonly streams?: ReadonlySet<string>; readonly notify: () => void }>();

  /** Resolves when some partition may have room again (or after `ms`). */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.on(undefined, () => {
        clearTimeout(timer);
        resolve();
      });
      const timer = setTimeout(() => {
        cancel();
        resolve();
      }, ms);
      timer.unref();
    });
  }

  /** Calls `notify` once, when one of `streams` (any partition when undefined) has room; returns a cancel function. */
  on(streams: ReadonlySet<string> | undefined, notify: () => void): () => void {
    const waiter = { streams, notify };
    this.waiters.add(waiter);
    return () => this.waiters.delete(waiter);
  }

  /** A partition (or, without one, possibly any: removed, closed) has room. */
  room(stream?: string): void {
    for (const waiter of this.waiters) {
      if (stream !== undefined && waiter.streams && !waiter.streams.has(stream)) continue;
      this.waiters.delete(waiter);
      waiter.notify();
    }
  }
}
