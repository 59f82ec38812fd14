/**
 * `WAIT` for `connection.waitReplicas`, shared by every write of one connection (the command connection, or on a
 * Redis Cluster the connection to one master).
 *
 * Why not one `WAIT` per write, pipelined after it: `WAIT` blocks the connection it is sent on, so the next write
 * and its `WAIT` only run once the previous `WAIT` returned. Without replicas, the n-th of n concurrent emits failed
 * after n × waitTimeoutMs. A separate connection for `WAIT` does not work either: `WAIT` only counts the writes of
 * its own connection (it waits for the replication offset of that client's last write).
 *
 * The design:
 * - Writes go out as they come, on the connection, without a `WAIT` of their own.
 * - Once a write's reply arrived, the write is in the connection's replication offset, so any `WAIT` sent on that
 *   connection from then on covers it. Writes answered while no `WAIT` is in flight are gathered (until the current
 *   I/O callbacks are done) and covered by one `WAIT`; writes answered while one is in flight wait for the next
 *   one, sent as soon as the current one returns. A `WAIT` confirms the whole batch at once.
 * - Each write has a deadline. The `WAIT` timeout is the time left to the earliest deadline of its batch (at least
 *   1 ms: `WAIT … 0` would block forever), so a `WAIT` never outlives the oldest emit's budget. When it returns with
 *   too few replicas, writes past their deadline fail (ReplicationTimeoutError); the rest get the next `WAIT`, with
 *   their own remaining time.
 * - The deadline is `waitTimeoutMs` after the write's reply, minus the time the write spent queued behind an earlier
 *   `WAIT` of ours (a write sent while one is in flight cannot run before it returns). So an emit never waits for
 *   replicas, its own `WAIT` or others', longer than `waitTimeoutMs` plus a round trip or two; the time Redis takes
 *   to receive and run the write itself (a large claim-check upload) does not count against it.
 * - A `WAIT` sent on a new socket (ioredis reconnected, or re-sent the `WAIT` after a reconnect) would count the new
 *   client's writes, not ours: writes answered on an earlier socket are reported as not confirmed (0), never as
 *   confirmed by a `WAIT` that did not cover them.
 */
import type { Redis } from 'ioredis';

interface PendingConfirmation {
  readonly deadline: number;
  /** The socket the write was answered on; a WAIT on another one does not cover it. */
  readonly socket: unknown;
  readonly resolve: (confirmed: number) => void;
  readonly reject: (error: unknown) => void;
}

/** One WAIT sent; `returnedAt` is set once its reply (or failure) arrived. */
export interface WaitInFlight {
  returnedAt?: number;
}

export class ReplicaWaiter {
  /** Answered writes not yet covered by a WAIT that was sent after their reply. */
  private next: PendingConfirmation[] = [];
  private inFlight?: WaitInFlight;
  private flushScheduled = false;

  constructor(
    private readonly connection: Redis,
    private readonly replicas: number,
    private readonly waitTimeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Call right before sending a write: the WAIT it will queue behind, if any (see deadlineOf). */
  beforeWrite(): { readonly sentAt: number; readonly blockedBy?: WaitInFlight } {
    return { sentAt: this.now(), blockedBy: this.inFlight };
  }

  /**
   * Call once the write's reply arrived (with what beforeWrite returned). Resolves with the number of replicas that
   * confirmed the write, at least `replicas` unless its deadline passed first; rejects when the WAIT itself failed.
   */
  confirm(sent: { readonly sentAt: number; readonly blockedBy?: WaitInFlight }): Promise<number> {
    const answeredAt = this.now();
    const blockedUntil = sent.blockedBy ? (sent.blockedBy.returnedAt ?? answeredAt) : sent.sentAt;
    const deadline = answeredAt + this.waitTimeoutMs - Math.max(0, blockedUntil - sent.sentAt);
    return new Promise((resolve, reject) => {
      this.next.push({ deadline, socket: this.connection.stream, resolve, reject });
      this.scheduleWait();
    });
  }

  /** Gathers the replies of the current I/O round before sending a WAIT, so concurrent writes share one. */
  private scheduleWait(): void {
    if (this.inFlight || this.flushScheduled || this.next.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.sendWait();
    });
  }

  private sendWait(): void {
    if (this.inFlight || this.next.length === 0) return;
    const socket = this.connection.stream;
    const batch: PendingConfirmation[] = [];
    for (const pending of this.next) {
      // Answered on a socket that is gone: no WAIT can cover that write any more.
      if (pending.socket === socket) batch.push(pending);
      else pending.resolve(0);
    }
    this.next = [];
    if (batch.length === 0) return;
    const timeoutMs = Math.max(1, Math.min(...batch.map((p) => p.deadline)) - this.now());
    const wait: WaitInFlight = {};
    this.inFlight = wait;
    this.connection.call('WAIT', this.replicas, timeoutMs).then(
      (reply) => {
        wait.returnedAt = this.now();
        this.inFlight = undefined;
        // Re-sent by ioredis on a new socket after a reconnect: the count is the new client's, not ours.
        const confirmed = this.connection.stream === socket ? Number(reply) : 0;
        for (const pending of batch) {
          if (confirmed >= this.replicas || wait.returnedAt >= pending.deadline || this.connection.stream !== socket) {
            pending.resolve(confirmed);
          } else {
            this.next.push(pending);
          }
        }
        this.scheduleWait();
      },
      (error: unknown) => {
        wait.returnedAt = this.now();
        this.inFlight = undefined;
        for (const pending of batch) pending.reject(error);
        this.scheduleWait();
      },
    );
  }
}
