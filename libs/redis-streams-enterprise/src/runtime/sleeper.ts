/**
 * A sleep that `wake()` can end early (so close() never waits for a back-off), and that never keeps the process alive:
 * every timer is `unref()`'d and cleared when its sleep ends.
 */
export class Sleeper {
  /** Sleeps in progress: how each ends, and its timer. */
  private readonly sleeping = new Map<() => void, NodeJS.Timeout>();

  /** Resolves after `ms`, or at the next `wake()`, whichever comes first. Never rejects. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const end = () => {
        clearTimeout(this.sleeping.get(end));
        this.sleeping.delete(end);
        resolve();
      };
      const timer = setTimeout(end, Math.max(0, ms));
      timer.unref();
      this.sleeping.set(end, timer);
    });
  }

  /** Ends every sleep in progress now. */
  wake(): void {
    for (const end of [...this.sleeping.keys()]) end();
  }

  /** True while a sleep is in progress. */
  get isSleeping(): boolean {
    return this.sleeping.size > 0;
  }
}

/** A pause nothing needs to end early; its timer never keeps the process alive. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}
