/**
 * Bounds how many entries are being handled at once and remembers which, so that
 * - the reading loop and the reclaimer pause at the bound (memory stays flat however slow handlers are),
 * - live claims can be extended while their handlers still run,
 * - close() can wait for what is in flight.
 * An entry whose handler is done and that only waits for its acknowledgement (an ordered lane's ack, confirmed in lane
 * order: transport/lane-acks.ts) may give its slot back early (`freeSlot`); it is still tracked (claims, close) and
 * counts against `settlingLimit` instead, so the next entries run while acks are on their way, and what waits for
 * acknowledgement stays bounded when Redis does not confirm.
 */
export class InFlight {
  /** stream -> entry id -> since when it is handled here. */
  private readonly running = new Map<string, Map<string, number>>();
  /** Entries read and waiting for a free slot: not running, but ours, so their claims are extended too. */
  private readonly held = new Map<string, Map<string, number>>();
  private runningCount = 0;
  /** Entries that gave their slot back and wait for their acknowledgement. */
  private settlingCount = 0;
  private readonly settled = new Set<Promise<void>>();
  private waiters: { min: number; wake: () => void }[] = [];

  constructor(
    readonly limit: number,
    private readonly now: () => number = Date.now,
    /** Entries that may wait for their acknowledgement after giving their slot back. */
    readonly settlingLimit: number = Math.max(limit, 1_024),
  ) {}

  get size(): number {
    return this.runningCount;
  }

  get available(): number {
    return Math.max(0, Math.min(this.limit - this.runningCount, this.settlingLimit - this.settlingCount));
  }

  /** Resolves when at least `min` slots are free (clamped to the limit). */
  whenAvailable(min = 1): Promise<void> {
    const need = Math.max(1, Math.min(min, this.limit));
    if (this.available >= need) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ min: need, wake: resolve }));
  }

  /** True if this entry is already being handled here (a claim can return an entry we hold). */
  has(stream: string, id: string): boolean {
    return (this.running.get(stream)?.has(id) ?? false) || (this.held.get(stream)?.has(id) ?? false);
  }

  /** Records an entry that was read but waits for a slot. */
  hold(stream: string, id: string): void {
    streamMap(this.held, stream).set(id, this.now());
  }

  /**
   * Runs `work` for an entry, holding a slot until it settles or calls `freeSlot` (its handler is done, only its
   * acknowledgement is outstanding). Resolves once the entry settled; never rejects.
   */
  run(stream: string, id: string, work: (freeSlot: () => void) => Promise<void>): Promise<void> {
    const held = this.held.get(stream);
    const heldSince = held?.get(id);
    if (heldSince !== undefined) held?.delete(id);
    const running = streamMap(this.running, stream);
    running.set(id, heldSince ?? this.now());
    this.runningCount++;
    let slotHeld = true;
    const freeSlot = () => {
      if (!slotHeld) return;
      slotHeld = false;
      this.runningCount--;
      this.settlingCount++;
      if (this.waiters.length > 0) this.wakeReady();
    };
    const settle = () => {
      running.delete(id);
      if (slotHeld) this.runningCount--;
      else this.settlingCount--;
      slotHeld = false;
      this.settled.delete(done);
      if (this.waiters.length > 0) this.wakeReady();
    };
    const done: Promise<void> = work(freeSlot).then(settle, settle);
    this.settled.add(done);
    return done;
  }

  /** Entries that have been in handlers for at least `ms`, grouped by stream. */
  olderThan(ms: number): Map<string, string[]> {
    const cutoff = this.now() - ms;
    const out = new Map<string, string[]>();
    for (const byStream of [this.running, this.held]) {
      for (const [stream, entries] of byStream) {
        for (const [id, since] of entries) {
          if (since > cutoff) continue;
          const ids = out.get(stream) ?? [];
          ids.push(id);
          out.set(stream, ids);
        }
      }
    }
    return out;
  }

  /** Waits until nothing is in flight, or until `timeoutMs` passed; returns how many were still running. */
  async drain(timeoutMs: number): Promise<number> {
    if (this.settled.size === 0) return 0;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    const all = (async () => {
      while (this.settled.size > 0) await Promise.all([...this.settled]);
    })();
    await Promise.race([all, timeout]);
    clearTimeout(timer);
    return this.runningCount;
  }

  /** Forgets held entries that will not run (close): they stay pending in Redis for another consumer. */
  releaseHeld(): number {
    let count = 0;
    for (const entries of this.held.values()) count += entries.size;
    this.held.clear();
    return count;
  }

  private wakeReady(): void {
    const available = this.available;
    const ready = this.waiters.filter((w) => w.min <= available);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.min > available);
    for (const w of ready) w.wake();
  }

  /** Wakes everything waiting for a slot (used on close so the reading loop can exit). */
  wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.wake();
  }
}

function streamMap(maps: Map<string, Map<string, number>>, stream: string): Map<string, number> {
  let map = maps.get(stream);
  if (!map) {
    map = new Map();
    maps.set(stream, map);
  }
  return map;
}
