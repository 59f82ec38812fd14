/**
 * Keeps one producer's messages of a topic in the order `emit()` was called:
 * - send turns: each message takes a ticket when it is emitted and is handed to the connection only after every
 *   earlier ticket was (routing may take different numbers of steps, e.g. when the layout is read from Redis);
 * - across a change of the topic's partition count:
 * newer layout wait until every message routed by an older one is stored; messages refused because their layout
 * was outdated are routed again one after the other, in the order Redis refused them (the order they were sent).
 * Without this, a message sent with the new layout could be stored before an earlier message of the same key that
 * is being re-routed.
 */
export class LayoutGate {
  private epoch = -1;
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  /** Waiters woken but not yet admitted (the gate is not idle while they are on their way in). */
  private waking = 0;
  private retryTail: Promise<void> = Promise.resolve();
  private nextTicket = 0;
  private turn = 0;
  private readonly finished = new Set<number>();
  private readonly turnWaiters = new Map<number, () => void>();

  /** Newest layout epoch a message was admitted with. */
  get newestEpoch(): number {
    return this.epoch;
  }

  /** A ticket in emit order (call synchronously when the message is emitted). */
  ticket(): number {
    return this.nextTicket++;
  }

  /** Resolves when every earlier ticket was sent; undefined when that is the case already (no need to wait). */
  sendTurn(ticket: number): Promise<void> | undefined {
    if (ticket === this.turn) return undefined;
    return new Promise((resolve) => this.turnWaiters.set(ticket, resolve));
  }

  /** The ticket's message was handed to the connection (or will never be): the next one may go. Idempotent. */
  sent(ticket: number): void {
    if (ticket < this.turn || this.finished.has(ticket)) return;
    this.finished.add(ticket);
    while (this.finished.delete(this.turn)) {
      this.turn++;
      const wake = this.turnWaiters.get(this.turn);
      if (wake) {
        this.turnWaiters.delete(this.turn);
        wake();
      }
    }
  }

  /** Admits a message at once when no waiting is needed (the common case); false: use enter(). */
  tryEnter(epoch: number): boolean {
    if (this.inFlight > 0 && (epoch > this.epoch || this.waiters.length > 0)) return false;
    if (epoch > this.epoch) this.epoch = epoch;
    this.inFlight++;
    return true;
  }

  /** Admits a message routed by layout `epoch`; resolve `leave()` when it is stored (or failed). */
  async enter(epoch: number): Promise<void> {
    // Once someone waits for a newer layout, later messages queue behind it too, so it cannot be starved.
    while (this.inFlight > 0 && (epoch > this.epoch || this.waiters.length > 0)) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.waking--;
    }
    if (epoch > this.epoch) this.epoch = epoch;
    this.inFlight++;
  }

  leave(): void {
    this.inFlight--;
    if (this.inFlight > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    this.waking += waiters.length;
    for (const wake of waiters) wake();
  }

  /** Takes the next turn to re-route a refused message; call the returned function when done. */
  async retryTurn(): Promise<() => void> {
    const previous = this.retryTail;
    let done!: () => void;
    this.retryTail = new Promise<void>((resolve) => (done = resolve));
    await previous;
    return done;
  }

  /** True when nothing waits or runs (the gate may be dropped). */
  get idle(): boolean {
    return this.inFlight === 0 && this.waiters.length === 0 && this.waking === 0 && this.turn === this.nextTicket;
  }
}
