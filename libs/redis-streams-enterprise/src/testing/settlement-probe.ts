import type { Redis } from 'ioredis';
import { firstEntryId, parseEntry, parseGroupsInfo } from '../connection/redis-replies.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { toDeadLetter, type DeadLetter } from '../dead-letter/dead-letter.js';
import { streamsOfTopic } from '../partitioning/topic-streams.js';
import { pageThrough } from '../replay/replay-cursor.js';
import { compareIds } from '../replay/replay-range.js';

/** How a message ended for a consumer group. */
export type SettlementOutcome = 'handled' | 'dead-lettered';

/** A message the consumer group is done with. */
export interface SettledMessage {
  /** `handled`: acknowledged after its handler succeeded; `dead-lettered`: moved to the dead-letter stream. */
  readonly outcome: SettlementOutcome;
  /** The entry id `emit()` resolved with. */
  readonly entryId: string;
  readonly pattern: string;
  /** The stream (a partition's stream on a partitioned topic) that held the entry. */
  readonly stream: string;
  readonly group: string;
  /** The dead letter (reason, error name and message, deliveries, payload, …) when `outcome` is `dead-lettered`. */
  readonly deadLetter?: DeadLetter;
}

const DEAD_LETTER_PAGE = 100;

/** What identifies the entry besides its id: entry ids are unique per stream only, so partitions can share one. */
export interface EntryHints {
  /** The stream (partition) that holds the entry, when known. */
  readonly stream?: string;
  /** The message id (`id` field) of the entry, when known: picks the right partition among several with the id. */
  readonly messageId?: string;
}

/**
 * Tells, by reading Redis, whether a consumer group is done with one entry. "Done" is what the transport writes:
 * - dead-lettered: the dead-letter stream beside the entry's stream has a letter with `rse.dlq.originalId` = the
 *   entry, `rse.dlq.stream` = its stream and `rse.dlq.group` = the group (the letter and the XACK are one script);
 * - handled: the group was delivered the entry (last-delivered-id >= it) and it is no longer pending (XACK'd)
 *   without a dead letter.
 * A failed attempt with retries left stays pending, so it is neither. Each `check()` reads only the dead letters
 * added since the previous one.
 */
export class SettlementProbe {
  /** What the last check saw, for the timeout error. */
  state = 'not looked at yet';
  /** The stream holding the entry, once found. */
  stream?: string;
  /** Dead-letter stream -> id of the last letter already looked at. */
  private readonly seenLetters = new Map<string, string>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
    readonly pattern: string,
    readonly entryId: string,
    readonly group: string,
    private readonly hints: EntryHints = {},
  ) {
    this.stream = hints.stream;
  }

  async check(): Promise<SettledMessage | undefined> {
    let holders = 0;
    if (!this.stream) ({ stream: this.stream, holders } = await this.locate());
    if (!this.stream && holders > 1) {
      this.state = `${holders} partitions hold an entry ${this.entryId} and none is known to be it; pass \`stream\` or \`messageId\``;
      return undefined;
    }
    // Not found (trimmed or deleted already): a dead letter of it may still be in any of the topic's streams.
    const sources = this.stream ? [this.stream] : await streamsOfTopic(this.redis, this.keys, this.pattern);
    const letter = await this.findDeadLetter(sources);
    if (letter) return this.settled('dead-lettered', letter.stream, letter);
    if (!this.stream) {
      this.state = 'the entry is in no stream of the pattern';
      return undefined;
    }
    if (!(await this.isAcknowledged(this.stream))) return undefined;
    // Dead-lettering acknowledges in the same script: an ack that happened after the look above is a dead letter.
    const late = await this.findDeadLetter([this.stream]);
    return late ? this.settled('dead-lettered', late.stream, late) : this.settled('handled', this.stream);
  }

  /**
   * The stream of the topic that holds the entry (its only stream, or one of its partitions): the one whose entry has
   * the message id when it is known, else the only one with an entry of that id. `holders`: streams with such an entry.
   */
  private async locate(): Promise<{ stream: string | undefined; holders: number }> {
    const holders: { stream: string; messageId: string | undefined }[] = [];
    for (const stream of await streamsOfTopic(this.redis, this.keys, this.pattern)) {
      const [raw] = await this.redis.xrange(stream, this.entryId, this.entryId, 'COUNT', 1);
      const entry = raw ? parseEntry(raw) : null;
      if (entry) holders.push({ stream, messageId: entry.fields.id });
    }
    const exact = this.hints.messageId === undefined ? [] : holders.filter((h) => h.messageId === this.hints.messageId);
    // An idempotent publish may resolve with the id of an earlier attempt, whose message id differs from this one's.
    const candidates = exact.length > 0 ? exact : holders;
    return { stream: candidates.length === 1 ? candidates[0].stream : undefined, holders: candidates.length };
  }

  private async findDeadLetter(streams: readonly string[]): Promise<DeadLetter | undefined> {
    for (const stream of streams) {
      const dlq = this.keys.deadLetterOf(stream);
      const seen = this.seenLetters.get(dlq);
      for await (const entry of pageThrough(this.redis, dlq, seen ? `(${seen}` : '-', '+', DEAD_LETTER_PAGE)) {
        this.seenLetters.set(dlq, entry.id);
        const letter = toDeadLetter(entry, dlq);
        if (letter.originalId !== this.entryId || letter.stream !== stream || letter.group !== this.group) continue;
        // Searching every partition (the entry itself is gone): the message id tells partitions' same ids apart.
        if (streams.length > 1 && this.hints.messageId !== undefined && letter.messageId !== this.hints.messageId) continue;
        return letter;
      }
    }
    return undefined;
  }

  private async isAcknowledged(stream: string): Promise<boolean> {
    const group = parseGroupsInfo(await this.redis.xinfo('GROUPS', stream)).find((g) => g.name === this.group);
    if (!group) {
      this.state = `group "${this.group}" does not exist on the stream (no consumer of it has started)`;
      return false;
    }
    if (compareIds(group.lastDeliveredId, this.entryId) < 0) {
      this.state = `not delivered to the group yet (last delivered: ${group.lastDeliveredId})`;
      return false;
    }
    // XPENDING's extended form lists [id, consumer, idle, deliveries] per entry: the first id is read like XRANGE's.
    if (firstEntryId(await this.redis.xpending(stream, this.group, this.entryId, this.entryId, 1)) === this.entryId) {
      this.state = 'delivered and pending (its handler runs, or a retry is scheduled)';
      return false;
    }
    return true;
  }

  private settled(outcome: SettlementOutcome, stream: string, deadLetter?: DeadLetter): SettledMessage {
    return { outcome, entryId: this.entryId, pattern: this.pattern, stream, group: this.group, ...(deadLetter ? { deadLetter } : {}) };
  }
}
