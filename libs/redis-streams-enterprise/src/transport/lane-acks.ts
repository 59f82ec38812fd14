/**
 * Acknowledgements of ordered lanes (a key, a partition, a whole topic under global order), confirmed in lane order,
 * so that a lane's next handler can start while the previous entry's XACK is on its way (one round trip per message
 * was most of the cost of an ordered lane).
 *
 * The hard case is an acknowledgement that fails: if a later entry of the lane were acknowledged while an earlier one
 * stayed pending, the next owner of the partition would handle the earlier one after the later one. So per lane (and
 * ownership period: its lease) at most one XACK is in flight; acks that come meanwhile wait and go together in the
 * next one (one multi-id XACK is atomic); a failed XACK is sent again, alone and first, while the partition is ours;
 * once it is not, that XACK and every later ack of the lane in the same ownership period are abandoned (the entries
 * stay pending, and the next owner takes them over in id order).
 */
import type { StreamCommands } from '../connection/stream-commands.js';
import { sleep } from '../runtime/sleeper.js';
import { RecentKeys } from '../runtime/recent-keys.js';

/** Pause between the attempts of a failed XACK while the partition is ours. */
const RETRY_MS = 250;
/** Lanes whose acks were abandoned, remembered so that later acks of the same ownership period are too (bounded). */
const ABANDONED_KEPT = 4_096;

interface QueuedAck {
  readonly id: string;
  readonly done: (confirmed: boolean) => void;
}

interface LaneState {
  readonly stream: string;
  queue: QueuedAck[];
  sending: boolean;
}

export interface LaneAckRequest {
  readonly stream: string;
  readonly id: string;
  /** The lane (OrderedDispatcher's lane of the entry). */
  readonly lane: string;
  /** Lease of the partition (the ownership period); '' when there is none. */
  readonly lease: string;
  /** False once the partition is no longer this consumer's (may wait out a lapse). */
  readonly stillOwned: () => boolean | Promise<boolean>;
}

export class LaneAcks {
  private readonly lanes = new Map<string, LaneState>();
  private readonly abandoned = new RecentKeys(ABANDONED_KEPT);

  constructor(
    private readonly commands: StreamCommands,
    private readonly group: string,
    /** Told once per confirmed XACK: how many entries it acknowledged. */
    private readonly onAcked: (stream: string, ids: readonly string[]) => void,
    /** Told when a failed XACK is retried (first failure of a run) or abandoned. */
    private readonly onTrouble: (stream: string, what: 'retrying' | 'abandoned', error: unknown) => void,
  ) {}

  /** Resolves true once Redis confirmed the ack, false when it was abandoned (the entry stays pending). */
  ack(request: LaneAckRequest): Promise<boolean> {
    const key = `${request.lease}\n${request.lane}`;
    if (this.abandoned.has(key)) return Promise.resolve(false);
    let state = this.lanes.get(key);
    if (!state) {
      state = { stream: request.stream, queue: [], sending: false };
      this.lanes.set(key, state);
    }
    const confirmed = new Promise<boolean>((resolve) => state.queue.push({ id: request.id, done: resolve }));
    if (!state.sending) void this.send(key, state, request.stillOwned);
    return confirmed;
  }

  private async send(key: string, state: LaneState, stillOwned: () => boolean | Promise<boolean>): Promise<void> {
    state.sending = true;
    // Acks queued in the same turn of the event loop go together: a lane's handlers run one after the other in
    // microtasks, so a read's worth of them usually finishes within one turn (one XACK instead of one per few entries).
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (state.queue.length > 0) {
      const batch = state.queue;
      state.queue = [];
      const ids = batch.map((a) => a.id);
      if (!(await this.confirm(state.stream, ids, stillOwned))) {
        this.abandon(key, state, batch);
        return;
      }
      this.onAcked(state.stream, ids);
      for (const a of batch) a.done(true);
    }
    state.sending = false;
    this.lanes.delete(key);
  }

  /** One XACK, sent again while the partition is ours; false once it is not. */
  private async confirm(stream: string, ids: readonly string[], stillOwned: () => boolean | Promise<boolean>): Promise<boolean> {
    let failures = 0;
    for (;;) {
      try {
        await this.commands.ack(stream, this.group, [...ids]);
        return true;
      } catch (error) {
        if (failures++ === 0) this.onTrouble(stream, 'retrying', error);
        if (this.commands.isClosed() || !(await stillOwned())) {
          this.onTrouble(stream, 'abandoned', error);
          return false;
        }
        await sleep(RETRY_MS);
      }
    }
  }

  private abandon(key: string, state: LaneState, batch: QueuedAck[]): void {
    const rest = state.queue;
    state.queue = [];
    state.sending = false;
    this.lanes.delete(key);
    this.abandoned.add(key);
    for (const a of [...batch, ...rest]) a.done(false);
  }
}
