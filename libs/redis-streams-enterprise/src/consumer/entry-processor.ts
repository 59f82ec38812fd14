/**
 * What the consumers (reading loops, reclaimer, partitioned consumer) hand each delivered entry to: the transport's
 * message processor, which decodes it, runs its Nest handler and settles the outcome. The consumers know only this.
 */
import type { DeliveredEntry } from '../connection/redis-replies.js';

/** How an entry of a partitioned topic is processed. */
export interface ProcessOptions {
  /** Lease value of the entry's partition: commits are refused once it changed (fencing). */
  readonly lease?: string;
  /** Partition number, for the handler's context. */
  readonly partition?: number;
  /** Retry failures in place, up to this many attempts in all, instead of scheduling a retry (ordered topics). */
  readonly inlineAttempts?: number;
  /**
   * Checked between in-place attempts and settlement retries: false once the partition is no longer this consumer's.
   * May wait (a lease that lapsed locally is either renewed or lost) rather than answer at once.
   */
  readonly stillOwned?: () => boolean | Promise<boolean>;
  /** The message's dependencies were not handled within ordering.timeoutMs (causal). */
  readonly causalTimedOut?: boolean;
  /** The entry's ordered lane (OrderedDispatcher): entries of one lane are handled one at a time, in order. */
  readonly lane?: string;
  /**
   * Frees the lane for its next entry before this one is settled: called once the handler succeeded and its
   * acknowledgement is queued in lane order. Without a call the lane is freed when process() resolves.
   */
  readonly releaseLane?: () => void;
  /**
   * Gives the entry's in-flight slot to the next entry before this one is settled (InFlight's freeSlot): called once
   * the handler succeeded and its plain acknowledgement is queued. The entry stays tracked until it settled.
   */
  readonly releaseSlot?: () => void;
}

export interface EntryProcessor {
  /** Processes one entry to its settlement (ack, retry, dead letter) or leaves it pending. Never rejects. */
  process(entry: DeliveredEntry, options?: ProcessOptions): Promise<void>;
  /** Registers the pattern a stream belongs to (default pattern of entries that carry none). */
  addStream(stream: string, pattern: string): void;
}
