/**
 * Exactly-once commits of ordered lanes (a key, a partition) whose handler wrote nothing but its processed record (no
 * transaction), confirmed in lane order, so that the lane's next handler runs while the commit is on its way instead
 * of after its round trip (with exactly-once on, a commit per message held every key for a round trip: consumers sat
 * idle half the time).
 *
 * The hard case is a commit that is refused or cannot reach Redis. A later commit of the lane must never land while an
 * earlier one did not: the next owner of the partition would then handle the earlier message after the later one. So
 * per lane (and ownership period: its lease) one commit is in flight at a time, in the order the lane's handlers
 * finished (their dispatch order); a commit that cannot reach Redis is sent again while the partition is ours; once it
 * is refused ('fenced': the lease moved, 'gone': the entry was taken over) or the partition is no longer ours, it and
 * every later commit of the lane in the same ownership period are abandoned: their entries stay pending and the next
 * owner takes them over in id order. Commits with transactional writes keep the lane until confirmed (the next
 * handler may read what they wrote) and do not come here.
 */
import type { CommitOutcome } from '../connection/stream-commands.js';
import { sleep } from '../runtime/sleeper.js';
import { RecentKeys } from '../runtime/recent-keys.js';

/** Pause between the attempts of a commit that could not reach Redis, while the partition is ours. */
const RETRY_MS = 250;
/** Lanes whose commits were abandoned, remembered so that later commits of the same ownership period are too (bounded). */
const ABANDONED_KEPT = 4_096;

export interface LaneCommitRequest {
  /** The lane (OrderedDispatcher's lane of the entry). */
  readonly lane: string;
  /** Lease of the partition (the ownership period). */
  readonly lease: string;
  /** False once the partition is no longer this consumer's (may wait out a lapse). */
  readonly stillOwned: () => boolean | Promise<boolean>;
  /** Runs the commit script once: its outcome, or undefined when Redis could not be reached (Settler.commit). */
  readonly send: () => Promise<CommitOutcome | undefined>;
}

interface Queued {
  readonly request: LaneCommitRequest;
  readonly done: (committed: boolean) => void;
}

interface LaneState {
  queue: Queued[];
  sending: boolean;
}

export class LaneCommits {
  private readonly lanes = new Map<string, LaneState>();
  private readonly abandoned = new RecentKeys(ABANDONED_KEPT);

  /** @param isClosed true once the command connection is closed (a commit then is not sent again). */
  constructor(private readonly isClosed: () => boolean) {}

  /** Resolves true once the commit was confirmed ('ok' or 'duplicate'), false when it was refused or abandoned. */
  commit(request: LaneCommitRequest): Promise<boolean> {
    const key = `${request.lease}\n${request.lane}`;
    if (this.abandoned.has(key)) return Promise.resolve(false);
    let state = this.lanes.get(key);
    if (!state) {
      state = { queue: [], sending: false };
      this.lanes.set(key, state);
    }
    const committed = new Promise<boolean>((resolve) => state.queue.push({ request, done: resolve }));
    if (!state.sending) void this.send(key, state);
    return committed;
  }

  private async send(key: string, state: LaneState): Promise<void> {
    state.sending = true;
    for (let next = state.queue.shift(); next; next = state.queue.shift()) {
      const outcome = await this.confirm(next.request);
      if (outcome === 'ok' || outcome === 'duplicate') {
        next.done(true);
        continue;
      }
      this.abandon(key, state, next);
      return;
    }
    state.sending = false;
    this.lanes.delete(key);
  }

  /** One commit, sent again while the partition is ours; undefined once it is not. */
  private async confirm(request: LaneCommitRequest): Promise<CommitOutcome | undefined> {
    for (;;) {
      const outcome = await request.send();
      if (outcome !== undefined) return outcome;
      if (this.isClosed() || !(await request.stillOwned())) return undefined;
      await sleep(RETRY_MS);
    }
  }

  private abandon(key: string, state: LaneState, first: Queued): void {
    const rest = state.queue;
    state.queue = [];
    state.sending = false;
    this.lanes.delete(key);
    this.abandoned.add(key);
    for (const q of [first, ...rest]) q.done(false);
  }
}
