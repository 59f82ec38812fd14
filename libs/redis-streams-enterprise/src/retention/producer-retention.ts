/**
 * The producer's share of retention: every few writes to a stream (retentionEveryWrites), one retention step on it.
 * In 'safe' mode that step is the trimming (XADD no longer trims inline, since it cannot know what the groups still
 * need); in both modes it logs when a group starts holding retention back, gets close to the limit or loses entries,
 * which a producer sees even when no consumer of that group runs.
 */
import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { ScriptedRedis } from '../connection/scripts.js';
import { errorText, logIds } from '../observability/log-format.js';
import { assessRetention, type RetentionLimits } from './retention-policy.js';
import { RetentionReporter, retentionEveryWrites, runRetention } from './stream-retention.js';

/** Streams whose write count is kept; past this the least recently written is dropped (consumers' passes still trim it). */
const MAX_COUNTED_STREAMS = 10_000;

export class ProducerRetention {
  private readonly logger = new Logger(ProducerRetention.name);
  private readonly reporter = new RetentionReporter();
  private readonly writes = new Map<string, number>();
  private readonly running = new Set<string>();
  private readonly everyWrites: number;

  constructor(
    private readonly limits: RetentionLimits,
    /** The command connection once it is ready (the producer's own; a step waits like a write would). */
    private readonly connection: () => Promise<Redis>,
  ) {
    this.everyWrites = retentionEveryWrites(limits);
  }

  /** Counts one write to `stream`; every `retentionEveryWrites` writes, starts a retention step (not awaited). */
  noteWrite(stream: string): void {
    const count = (this.writes.get(stream) ?? 0) + 1;
    this.writes.delete(stream);
    if (count < this.everyWrites) {
      this.writes.set(stream, count);
      if (this.writes.size > MAX_COUNTED_STREAMS) this.writes.delete(this.writes.keys().next().value as string);
      return;
    }
    // One step per stream at a time: a slow Redis must not pile them up.
    if (this.running.has(stream)) return;
    this.running.add(stream);
    void this.step(stream).finally(() => this.running.delete(stream));
  }

  private async step(stream: string): Promise<void> {
    try {
      const command = (await this.connection()) as ScriptedRedis;
      // No unread counts here: they cost an XRANGE per lagging group, and until a group loses entries Redis' lag is
      // exactly its unread count (the consumers' pass counts them, for the loss metric).
      const reply = await runRetention(command, stream, this.limits, { trim: this.limits.trimming === 'safe', countUnread: false });
      if (reply) this.reporter.report(stream, reply, assessRetention(reply, this.limits), this.limits);
    } catch (error) {
      // The next step (a few writes later) or a consumer's pass does the same work; nothing is lost by skipping one.
      this.logger.debug?.(`Retention step failed, a later one retries: ${errorText(error)} ${logIds({ stream })}`);
    }
  }
}
