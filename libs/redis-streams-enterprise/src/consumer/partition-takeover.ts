import type { Logger } from '@nestjs/common';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { parseClaimReply, parseNewEntries, parsePendingOwners, type DeliveredEntry } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { logFields, logIds } from '../observability/log-format.js';
import type { OrderedDispatcher } from '../ordering/ordered-dispatcher.js';

export interface PartitionTakeoverDeps {
  readonly config: ResolvedRedisStreamsConfig;
  readonly command: ScriptedRedis;
  readonly keys: StreamKeys;
  readonly dispatcher: OrderedDispatcher;
  readonly onDeleted: (stream: string, ids: string[]) => void;
  /** Streams of the partitions this consumer holds now. */
  readonly owned: () => string[];
  readonly logger: Logger;
}

/**
 * Which entries of an owned partition reach the dispatcher, and in which order. On assignment the partition's
 * pending entries (left by the previous owner) are claimed first, in id order; only then is it read.
 *
 * The hard case: a former owner whose read was on its way when it lost the partition (a stall, a lease that expired
 * while Redis restarted). Redis may execute that read after the takeover, delivering entries to the former owner's
 * pending list, where nobody handles them, while this owner reads and handles the entries after them — the order
 * is broken. So every read that returns entries is followed by one XPENDING summary of its partitions (pipelined, one
 * round trip): when another consumer holds entries of an owned partition, the read's entries are not dispatched;
 * the partition is taken over again from the last entry dispatched, claiming the stranded entries and the read's in
 * id order (the read's get one more delivery count: they were claimed). A stale read that takes entries after the
 * last read is found by the next read's check, before anything newer is dispatched, or by the periodic sweep.
 *
 * Every claim is fenced by the partition's lease, atomically in the claim script: a consumer that lost the partition
 * without noticing yet (a stall, a lapse) takes nothing from the new owner (found by the cluster soak, seed 7).
 */
export class PartitionTakeover {
  /** Partitions being taken over: stream -> XPENDING cursor and whose entries ('' = any consumer's). */
  private readonly pending = new Map<string, { cursor: string; owner: string }>();
  /** Highest entry id handed to the dispatcher per owned partition (where a new takeover starts after). */
  private readonly lastPushed = new Map<string, string>();
  /** Lease of each partition's ownership period: every claim is fenced by it (see RECLAIM_IDLE). */
  private readonly leases = new Map<string, string>();
  /** Partitions whose takeover was refused because their lease moved on (warned once per ownership period). */
  private readonly fenced = new Set<string>();
  private lastSweep = Date.now();

  constructor(private readonly deps: PartitionTakeoverDeps) {}

  /** The partition was assigned under `lease`: claim everything pending in it before it is read. */
  begin(stream: string, lease: string): void {
    this.pending.set(stream, { cursor: '-', owner: '' });
    this.lastPushed.delete(stream);
    this.leases.set(stream, lease);
    this.fenced.delete(stream);
  }

  /** The partition is no longer ours. */
  end(stream: string): void {
    this.pending.delete(stream);
    this.lastPushed.delete(stream);
    this.leases.delete(stream);
    this.fenced.delete(stream);
  }

  /** True while the partition's pending entries are being claimed (it must not be read meanwhile). */
  has(stream: string): boolean {
    return this.pending.has(stream);
  }

  /** One round: the periodic sweep for leftovers, then a batch of claims per partition being taken over. */
  async round(): Promise<void> {
    await this.sweep();
    const { command, keys, config, dispatcher } = this.deps;
    const { group, consumerName } = config.consumer;
    for (const [stream, { cursor, owner }] of [...this.pending]) {
      const room = dispatcher.room(stream);
      if (room === 0) continue;
      const lease = this.leases.get(stream) ?? '';
      const raw = await command.rseReclaimIdle(stream, keys.retryScheduleOf(stream, group), keys.leaseOf(stream, group), group, consumerName, 0, room, cursor, owner, lease);
      const result = parseClaimReply(raw, stream);
      if (result.nextCursor === 'fenced') {
        // The lease passed on (this consumer stalled, or Redis lost it): claiming now would take entries from the new
        // owner. Nothing was claimed; the partition stays unread until the coordinator revokes it.
        if (!this.fenced.has(stream)) {
          this.fenced.add(stream);
          this.deps.logger.warn(`Not taking over a partition whose lease passed to another consumer ${logIds({ stream })}`, logFields({ stream, reason: 'fenced' }));
        }
        continue;
      }
      if (result.deletedIds.length > 0) this.deps.onDeleted(stream, result.deletedIds);
      if (!this.pending.has(stream)) continue; // revoked meanwhile
      this.push(stream, result.entries);
      if (result.nextCursor === '0-0') this.pending.delete(stream);
      else this.pending.set(stream, { cursor: result.nextCursor, owner });
    }
  }

  /**
   * Hands the entries of a read to the dispatcher, unless a stale read of a former owner stranded entries before them.
   * @param pending XPENDING summaries taken right after the read (pipelined behind it), per stream; streams missing
   * there are asked now.
   */
  async deliver(reply: unknown, pending?: ReadonlyMap<string, unknown>): Promise<void> {
    const batches: { stream: string; entries: DeliveredEntry[] }[] = [];
    parseNewEntries(reply, (stream, entries, deleted) => {
      if (deleted.length > 0) this.deps.onDeleted(stream, deleted);
      if (entries.length > 0) batches.push({ stream, entries });
    });
    if (batches.length === 0) return;
    const stranded = await this.strandedIn(batches.map((b) => b.stream), pending);
    for (const { stream, entries } of batches) {
      // Revoked meanwhile: the entries stay pending for the next owner. Lost and taken again while the read was on its
      // way: the new ownership period's takeover claims them, in order with what was pending before.
      if (!this.deps.dispatcher.has(stream)) continue;
      if (!stranded.has(stream) && !this.pending.has(stream)) {
        this.push(stream, entries);
        continue;
      }
      if (stranded.has(stream)) {
        this.deps.logger.warn(
          `Entries of an owned partition were taken by a stale read of a former owner; claiming them, in order, before going on ${logIds({ stream })}`,
          logFields({ stream, reason: 'stale-read' }),
        );
      }
      this.claimAfterLastPushed(stream);
    }
  }

  /**
   * A read that failed on its way back (the connection dropped, the watchdog replaced it) may have been executed: its
   * entries are then pending for this consumer, delivered and never received, and a partition has no reclaimer. So
   * each partition of the read is taken over again from after the last entry dispatched, before it is read again: the
   * entries of the lost reply come first, in id order (found by the soak, seed 7). A read ended on purpose (CLIENT
   * UNBLOCK) or refused (NOGROUP) delivered nothing.
   */
  afterFailedRead(streams: readonly string[], error: unknown): void {
    if (/UNBLOCKED|NOGROUP/.test(error instanceof Error ? error.message : String(error))) return;
    for (const stream of streams) if (this.deps.dispatcher.has(stream) && !this.pending.has(stream)) this.claimAfterLastPushed(stream);
  }

  /** Takes the partition over again from after the last entry dispatched: everything pending there, anyone's, in id order. */
  private claimAfterLastPushed(stream: string): void {
    const after = this.lastPushed.get(stream);
    this.pending.set(stream, { cursor: after === undefined ? '-' : `(${after}`, owner: '' });
  }

  private push(stream: string, entries: readonly DeliveredEntry[]): void {
    if (entries.length === 0) return;
    this.deps.dispatcher.push(stream, entries);
    this.lastPushed.set(stream, entries[entries.length - 1].id);
  }

  /**
   * The streams among `streams` where a consumer other than this one has entries pending (summaries taken with the
   * read, or one pipelined round trip now).
   */
  private async strandedIn(streams: readonly string[], known?: ReadonlyMap<string, unknown>): Promise<Set<string>> {
    const { command, config } = this.deps;
    const { group, consumerName } = config.consumer;
    const summaries = await Promise.all(streams.map((stream) => (known?.has(stream) ? known.get(stream) : command.xpending(stream, group))));
    const stranded = new Set<string>();
    streams.forEach((stream, i) => {
      for (const [name, count] of parsePendingOwners(summaries[i])) if (name !== consumerName && count > 0) stranded.add(stream);
    });
    return stranded;
  }

  /**
   * A stale read that took the last entries of a partition nobody writes to any more is not followed by a read that
   * would find it: every third of a session, owned partitions are checked and such leftovers claimed (only that
   * consumer's entries, from the start: none of them may stay pending for good).
   */
  private async sweep(): Promise<void> {
    const { config, command, dispatcher } = this.deps;
    const every = Math.max(100, Math.floor(config.partitioning.sessionTimeoutMs / 3));
    if (Date.now() - this.lastSweep < every) return;
    this.lastSweep = Date.now();
    const streams = this.deps.owned().filter((s) => !this.pending.has(s) && dispatcher.has(s));
    const summaries = await Promise.all(streams.map((stream) => command.xpending(stream, config.consumer.group)));
    streams.forEach((stream, i) => {
      const other = [...parsePendingOwners(summaries[i])].find(([name, count]) => name !== config.consumer.consumerName && count > 0);
      if (!other || !dispatcher.has(stream) || this.pending.has(stream)) return;
      this.deps.logger.warn(`Found ${other[1]} entries of a previous owner pending in an owned partition; taking them over ${logIds({ stream })}`);
      this.pending.set(stream, { cursor: '-', owner: other[0] });
    });
  }
}
