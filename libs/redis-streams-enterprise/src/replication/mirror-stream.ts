import type { MirrorBatch } from './mirror-batch.js';
import type { MirroredStreamKeys } from './mirror-discovery.js';

/** One mirrored stream in `StreamMirror.getStatus().topics` (names kept stable for dashboards and consoles). */
export interface MirroredStreamStatus {
  /** Name of the mirror copying it. */
  readonly mirror: string;
  /** The stream key in the source region (a topic's stream or one partition of it). */
  readonly source: string;
  /** The stream key in this region the copies are appended to. */
  readonly target: string;
  /**
   * Entries added to the source stream after the checkpoint: the source's XINFO STREAM `entries-added` counter minus
   * the ordinal of the checkpoint (Redis 7.0+; null on 6.2 or while the source stream cannot be read). Refreshed every
   * `lagIntervalMs`. An entry deleted from the source before it was copied still counts until the mirror catches up.
   */
  readonly lag: number | null;
  /** Entries copied into the target stream from this source region, in total (kept in the checkpoint, across restarts). */
  readonly copied: number;
  /** The last source entry id the checkpoint covers (copied or skipped); null before the first batch. */
  readonly lastSourceId: string | null;
  /** Entries not copied because they were born in another region (since this mirror started). */
  readonly skipped: number;
  /** Entries not copied because they cannot be (too many fields; since this mirror started). */
  readonly rejected: number;
  /**
   * Source entries deleted before they were copied (trimmed by the source's retention during a long outage, or
   * deleted), at least: the source's deletions (`entries-added` minus length) beyond the checkpoint's ordinal. Lost
   * for this region; logged as an error when it grows. Exact for trimming, a lower bound otherwise; since start.
   */
  readonly missed: number;
}

interface SourceInfo {
  readonly length: number;
  readonly entriesAdded: number | null;
  readonly lastGeneratedId: string | null;
}

/**
 * Position and counters of one mirrored stream. `stored` is the checkpoint as this region holds it ('' when none):
 * the next write must name it (compare-and-set). `ordinal` is how many entries the source had added up to the
 * checkpoint, so lag = entries-added now - ordinal; it is re-synchronised whenever the mirror has caught up.
 */
export class MirrorStream {
  readonly source: string;
  readonly target: string;
  private loaded = false;
  stored = '';
  readAfter = '0-0';
  private ordinal: number | null = null;
  private copied = 0;
  private skipped = 0;
  private rejected = 0;
  private entriesAdded: number | null = null;
  private missed = 0;
  /** Misses counted before the ordinal was last re-synchronised (the estimate starts again from there). */
  private missedBefore = 0;

  constructor(
    keys: MirroredStreamKeys,
    readonly checkpointKey: string,
    private readonly mirror: string,
  ) {
    this.source = keys.source;
    this.target = keys.target;
  }

  get isLoaded(): boolean {
    return this.loaded;
  }

  resume(checkpoint: { id: string; ordinal: number | null; copied: number }): void {
    this.stored = checkpoint.id;
    this.readAfter = checkpoint.id;
    this.ordinal = checkpoint.ordinal;
    this.copied = checkpoint.copied;
    this.loaded = true;
  }

  /** No checkpoint: everything the source still holds (its first entry's ordinal is entries-added minus length). */
  startAtBeginning(info: SourceInfo | undefined): void {
    this.stored = '';
    this.readAfter = '0-0';
    this.ordinal = info?.entriesAdded != null ? Math.max(0, info.entriesAdded - info.length) : null;
    this.copied = 0;
    this.loaded = true;
  }

  startAtEnd(id: string, entriesAdded: number | null): void {
    this.stored = id;
    this.readAfter = id;
    this.ordinal = entriesAdded;
    this.copied = 0;
    this.loaded = true;
  }

  /** The checkpoint in this region must be read again before the next batch. */
  unload(): void {
    this.loaded = false;
  }

  ordinalAfter(entriesRead: number): number | null {
    return this.ordinal === null ? null : this.ordinal + entriesRead;
  }

  advance(lastId: string, entriesRead: number, copiedTotal: number, batch: MirrorBatch): void {
    this.stored = lastId;
    this.readAfter = lastId;
    this.ordinal = this.ordinalAfter(entriesRead);
    this.copied = copiedTotal;
    this.skipped += batch.skipped;
    this.rejected += batch.rejected.length;
  }

  /** Takes the source stream's counters (XINFO STREAM); returns how many more entries were found missed. */
  observeSource(info: SourceInfo | undefined): number {
    this.entriesAdded = info?.entriesAdded ?? null;
    if (!info || info.entriesAdded === null || this.ordinal === null || !this.loaded) return 0;
    // The source deleted more entries than there are up to the checkpoint: at least the difference were after it.
    const missed = this.missedBefore + Math.max(0, info.entriesAdded - info.length - this.ordinal);
    const grew = Math.max(0, missed - this.missed);
    this.missed += grew;
    // Caught up: the checkpoint is the source's last id, so its ordinal is exactly entries-added (this also repairs
    // the estimate after deletions in the source, or a source that restarted with fewer entries).
    if (info.lastGeneratedId !== null && info.lastGeneratedId === this.stored) {
      this.ordinal = info.entriesAdded;
      this.missedBefore = this.missed;
    }
    return grew;
  }

  status(): MirroredStreamStatus {
    const lag = this.entriesAdded === null || this.ordinal === null ? null : Math.max(0, this.entriesAdded - this.ordinal);
    return {
      mirror: this.mirror,
      source: this.source,
      target: this.target,
      lag,
      copied: this.copied,
      lastSourceId: this.stored === '' ? null : this.stored,
      skipped: this.skipped,
      rejected: this.rejected,
      missed: this.missed,
    };
  }
}
