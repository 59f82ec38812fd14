import { Logger } from '@nestjs/common';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { asStreamCommands, isRedisConnection, type CommitOutcome, type StreamCommands } from '../connection/stream-commands.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { errorText, isErrorLike, logFields, logIds } from '../observability/log-format.js';
import type { TransportMetrics } from '../observability/metrics.js';
import type { DeadLetterReason } from '../dead-letter/dead-letter-reason.js';
import type { AckBatcher } from './ack-batcher.js';
import { LaneAcks } from './lane-acks.js';
import { LaneCommits } from './lane-commits.js';
import { toWireError } from '../wire/envelope.js';
import { decideAfterFailure } from './settlement-policy.js';
import { doorbellFor } from '../cluster/doorbell.js';
import { sleep } from '../runtime/sleeper.js';
import { FailureStreak, loopReport, type LoopHealthReport } from '../observability/loop-health.js';

export type { CommitOutcome } from '../connection/stream-commands.js';

/** Dead-letter reasons counted as decode failures in the exported metrics. */
const DECODE_FAILURES: ReadonlySet<string> = new Set(['decode-failed', 'decrypt-failed']);

/** How often a settlement that could not reach Redis is retried while the partition is ours (ordered topics). */
const RETRY_WHILE_OWNED_MS = 250;

/** Names the streams a committed transaction emitted to (cluster/doorbell.ts's DoorbellRinger). */
export interface StreamRinger {
  ring(stream: string): void;
}

/** What a commit writes besides the acknowledgement. */
export interface CommitRequest {
  /** Lease value the partition must still have ('' for plain topics). */
  readonly lease?: string;
  /** Processed record of the message (exactly-once), or undefined. */
  readonly processedKey?: string;
  readonly writes: readonly { command: string; key: string; args: readonly string[] }[];
}

/**
 * Carries out in Redis the ways an entry leaves (or stays in) a group's pending list: acknowledged, scheduled for
 * another attempt, or moved to the dead-letter stream (what to do is decided by settlement-policy.ts). Every
 * Redis-side step is atomic (scripts.ts); when a step cannot reach Redis the entry simply stays pending and is
 * reclaimed after consumer.claimIdleMs, so nothing is lost on any path.
 */
export class Settler {
  private readonly logger = new Logger('RedisStreamsServer');
  private readonly commands: StreamCommands;
  /** With the doorbell: names the streams a committed transaction emitted to (cluster/doorbell.ts). */
  private readonly doorbell?: StreamRinger;
  /** Scheduling retries and dead-lettering: failures in a row (a refused script keeps every failed entry pending). */
  private readonly settling = new FailureStreak();
  /** Acks of ordered lanes, confirmed in lane order (created on first use). */
  private laneAcks?: LaneAcks;
  /** Exactly-once commits without writes of ordered lanes, confirmed in lane order (created on first use). */
  private laneCommits?: LaneCommits;

  /**
   * @param commands the command port, or the server's command connection (wrapped in the port; the doorbell, when
   * used, rings on it).
   * @param doorbell with a port: the ringer of the doorbell, if one is used.
   */
  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    commands: StreamCommands | ScriptedRedis,
    private readonly keys: StreamKeys,
    private readonly acks: AckBatcher,
    private readonly metrics: TransportMetrics,
    /** Told when a retry was scheduled, so the reclaimer looks at that stream when it falls due. */
    private readonly onRetryScheduled: (stream: string, dueAtMs: number) => void = () => undefined,
    doorbell?: StreamRinger,
  ) {
    this.commands = asStreamCommands(commands);
    this.doorbell = isRedisConnection(commands) ? doorbellFor(commands, keys, config.streams.doorbell) : doorbell;
  }

  /** Health of retries and dead-lettering (failures in a row of their scripts). */
  health(): LoopHealthReport {
    return loopReport('retries and dead-lettering', this.settling.health(), null);
  }

  /**
   * @param stillOwned ordered topics: keep retrying a failed XACK while this says the partition is still ours, so
   * the next message of the key never starts while an earlier one could still be redelivered after it. Without it a
   * failed ack leaves the entry pending for the reclaimer (at-least-once).
   */
  async ack(entry: DeliveredEntry, stillOwned?: () => boolean | Promise<boolean>): Promise<void> {
    try {
      await this.acks.ack(entry.stream, entry.id);
    } catch (error) {
      if (stillOwned) return this.retryWhileOwned(entry, stillOwned, () => this.acks.ack(entry.stream, entry.id).then(() => true), error);
      // The entry stays pending and is reclaimed later: it will be processed again (at-least-once).
      const ids = { stream: entry.stream, group: this.config.consumer.group, id: entry.id };
      this.logger.warn(`Ack failed, entry will be redelivered: ${errorText(error)} ${logIds(ids)}`, logFields({ ...ids, reason: 'ack-failed', error }));
      return;
    }
    this.metrics.labelled?.count('acked', entry.stream);
    if (entry.deliveryCount > 1) {
      // A retried entry succeeded: forget when it first failed. A leftover field would only be a stale timestamp.
      this.commands.forgetFailure(this.keys.failuresOf(entry.stream, this.config.consumer.group), entry.id).catch(() => undefined);
    }
  }

  /**
   * Acknowledges an entry of an ordered lane after every earlier entry of the lane (lane-acks.ts): the lane's next
   * handler may start before this resolves. Resolves once Redis confirmed it, or once it was abandoned because the
   * partition is no longer ours (the entry stays pending for the next owner).
   */
  async ackInLaneOrder(entry: DeliveredEntry, lane: string, lease: string, stillOwned: () => boolean | Promise<boolean>): Promise<void> {
    this.laneAcks ??= new LaneAcks(
      this.commands,
      this.config.consumer.group,
      (stream, ids) => {
        this.metrics.recordAcks(ids.length);
        this.metrics.labelled?.count('acked', stream, ids.length);
      },
      (stream, what, error) => {
        const ids = { stream, group: this.config.consumer.group };
        const text = what === 'retrying' ? 'Ack failed; retrying while the partition is ours, later acks of its lane wait' : 'Ack abandoned: the partition is no longer ours, its new owner handles the entry again';
        this.logger.warn(`${text}: ${errorText(error)} ${logIds(ids)}`, logFields({ ...ids, reason: what === 'retrying' ? 'ack-failed' : 'ack-abandoned', error }));
      },
    );
    const confirmed = await this.laneAcks.ack({ stream: entry.stream, id: entry.id, lane, lease, stillOwned });
    if (confirmed && entry.deliveryCount > 1) {
      this.commands.forgetFailure(this.keys.failuresOf(entry.stream, this.config.consumer.group), entry.id).catch(() => undefined);
    }
  }

  /**
   * A failed attempt of an entry that is redelivered (not retried in place): schedule the next attempt with backoff
   * (or `requestedDelayMs`), or dead-letter it when the attempts are used up.
   */
  async fail(entry: DeliveredEntry, error: unknown, requestedDelayMs?: number): Promise<void> {
    this.metrics.failed++;
    this.metrics.labelled?.count('failed', entry.stream);
    this.metrics.tracer?.fail(error);
    const { attempts, backoff } = this.config.retry;
    const decision = decideAfterFailure({ attempt: entry.deliveryCount, maxAttempts: attempts, inPlace: false, backoff, requestedDelayMs });
    if (decision.action === 'dead-letter') return this.deadLetter(entry, decision.reason, error);
    const delay = decision.delayMs;
    const { group, consumerName } = this.config.consumer;
    try {
      const scheduled = await this.commands.scheduleRetry(
        { stream: entry.stream, retrySchedule: this.keys.retryScheduleOf(entry.stream, group), failures: this.keys.failuresOf(entry.stream, group) },
        group,
        consumerName,
        entry.id,
        delay,
      );
      this.settling.succeeded();
      if (scheduled) {
        this.metrics.retried++;
        this.metrics.labelled?.count('retried', entry.stream);
        this.metrics.tracer?.event('retry scheduled', { 'messaging.redis_streams.attempt': entry.deliveryCount, 'messaging.redis_streams.retry_delay_ms': delay });
        this.onRetryScheduled(entry.stream, Date.now() + delay);
      }
      this.logger.warn(
        `Handler failed (attempt ${entry.deliveryCount} of ${attempts}), retry in ${delay} ms: ${errorText(error)} ` +
          logIds({ stream: entry.stream, group, id: entry.id }),
        logFields({ stream: entry.stream, group, id: entry.id, reason: 'retry-scheduled', error }),
      );
    } catch (scheduleError) {
      this.settling.failed(scheduleError);
      this.logger.warn(
        `Handler failed and the retry could not be scheduled; the entry stays pending and is reclaimed after ` +
          `consumer.claimIdleMs: ${errorText(scheduleError)} ${logIds({ stream: entry.stream, id: entry.id })}`,
        logFields({ stream: entry.stream, group, id: entry.id, reason: 'retry-not-scheduled', error: scheduleError }),
      );
    }
  }

  /**
   * @param attempts handler attempts made in place (ordered topics retry without redelivery, so Redis's delivery
   * counter does not count them); recorded as `rse.dlq.attempts`.
   */
  async deadLetter(entry: DeliveredEntry, reason: DeadLetterReason, error: unknown, attempts?: number): Promise<void> {
    const { group, consumerName } = this.config.consumer;
    if (DECODE_FAILURES.has(reason)) this.metrics.labelled?.count('decode_failures', entry.stream);
    const ids = logIds({ stream: entry.stream, group, id: entry.id });
    const fields = (why: string, cause: unknown) => logFields({ stream: entry.stream, group, id: entry.id, reason: why, error: cause });
    if (!this.config.deadLetter.enabled) {
      this.logger.error(`Message dropped (${reason}; dead-lettering is disabled): ${errorText(error)} ${ids}`, fields(reason, error));
      return this.ack(entry);
    }
    const err = isErrorLike(error) ? error : Object.assign(new Error(toWireError(error).message), { name: 'Error' });
    const code = (err as { code?: unknown }).code;
    try {
      const deadLetter = this.keys.deadLetterOf(entry.stream);
      const keys = {
        stream: entry.stream,
        deadLetter,
        retrySchedule: this.keys.retryScheduleOf(entry.stream, group),
        failures: this.keys.failuresOf(entry.stream, group),
        deadLetterBlobIndex: this.keys.blobIndexOf(deadLetter),
      };
      const dlqId = await this.commands.deadLetter(keys, group, entry.id, this.config.deadLetter.maxLen, [
        'rse.dlq.reason', reason,
        'rse.dlq.originalId', entry.id,
        'rse.dlq.stream', entry.stream,
        'rse.dlq.group', group,
        'rse.dlq.consumer', consumerName,
        'rse.dlq.errorName', err.name,
        'rse.dlq.errorMessage', err.message.slice(0, 2_000),
        'rse.dlq.errorCode', code === undefined || code === null ? '' : String(code),
        ...(attempts === undefined ? [] : ['rse.dlq.attempts', String(attempts)]),
      ]);
      this.settling.succeeded();
      if (dlqId) {
        this.metrics.deadLettered++;
        this.metrics.labelled?.count('dead_lettered', entry.stream);
        this.metrics.tracer?.event('dead-lettered', { 'messaging.redis_streams.dead_letter.reason': reason, 'messaging.redis_streams.dead_letter.id': String(dlqId) });
        this.logger.error(`Message dead-lettered (${reason}): ${errorText(error)} ${ids} dlqId=${String(dlqId)}`, fields(reason, error));
      }
    } catch (dlqError) {
      this.settling.failed(dlqError);
      this.logger.error(
        `Dead-lettering failed; the entry stays pending and is retried after consumer.claimIdleMs: ${errorText(dlqError)} ${ids}`,
        fields('dead-letter-failed', dlqError),
      );
    }
  }

  /** Retries a settlement every 250 ms while `stillOwned()` is true (ordered topics: Redis unreachable for a while). */
  private async retryWhileOwned(
    entry: DeliveredEntry,
    stillOwned: () => boolean | Promise<boolean>,
    attempt: () => Promise<boolean>,
    first: unknown,
  ): Promise<void> {
    this.logger.warn(`Settling failed; retrying while the partition is ours, its key waits: ${errorText(first)} ${logIds({ stream: entry.stream, id: entry.id })}`);
    while (await stillOwned()) {
      await sleep(RETRY_WHILE_OWNED_MS);
      try {
        if (await attempt()) return;
      } catch {
        // still unreachable: try again while the partition is ours
      }
    }
  }

  /**
   * @param stillOwned as for ack(): keep retrying a commit that could not reach Redis while the partition is ours
   * (a commit is safe to repeat: it re-checks ownership and the processed record).
   */
  async commitWhileOwned(entry: DeliveredEntry, request: CommitRequest, stillOwned: () => boolean | Promise<boolean>): Promise<void> {
    if ((await this.commit(entry, request)) !== undefined) return;
    await this.retryWhileOwned(entry, stillOwned, async () => (await this.commit(entry, request)) !== undefined, 'commit failed');
  }

  /**
   * Commits an entry of an ordered lane whose handler wrote nothing but its processed record, after every earlier
   * commit of the lane (lane-commits.ts): the lane's next handler may start before this resolves. Resolves once Redis
   * confirmed it, or once it was refused or abandoned (the entry stays pending for the partition's next owner).
   */
  async commitInLaneOrder(entry: DeliveredEntry, lane: string, request: CommitRequest, stillOwned: () => boolean | Promise<boolean>): Promise<void> {
    this.laneCommits ??= new LaneCommits(() => this.commands.isClosed());
    await this.laneCommits.commit({ lane, lease: request.lease ?? '', stillOwned, send: () => this.commit(entry, request) });
  }

  /**
   * Acknowledges together with the handler's transactional writes and the processed record, atomically, if this
   * consumer still owns the entry (and the partition lease). A commit that cannot reach Redis leaves the entry
   * pending: it is redelivered and, with exactly-once, recognised as processed only if the commit had happened.
   */
  async commit(entry: DeliveredEntry, request: CommitRequest): Promise<CommitOutcome | undefined> {
    const { group, consumerName } = this.config.consumer;
    const keys = [entry.stream, request.lease ? this.keys.leaseOf(entry.stream, group) : entry.stream, request.processedKey ?? entry.stream];
    const args: (string | number)[] = [group, consumerName, entry.id, request.lease ?? '', request.processedKey ? this.config.exactlyOnce.windowMs : '', request.writes.length];
    for (const write of request.writes) {
      keys.push(write.key);
      args.push(write.command, write.args.length, ...write.args);
    }
    try {
      const outcome = await this.commands.commit(keys, args);
      if (outcome === 'ok' || outcome === 'duplicate') {
        this.metrics.recordAcks(1);
        this.metrics.labelled?.count('acked', entry.stream);
      }
      if (outcome === 'ok' && this.doorbell) for (const write of request.writes) if (write.command === 'XADD') this.doorbell.ring(write.key);
      if (outcome === 'duplicate') {
        this.metrics.duplicatesSkipped++;
        this.metrics.labelled?.count('duplicates_skipped', entry.stream);
      }
      if (outcome === 'fenced' || outcome === 'gone') {
        this.metrics.fencedCommits++;
        this.metrics.labelled?.count('fenced_commits', entry.stream);
        this.metrics.tracer?.event('commit fenced', { 'messaging.redis_streams.commit.outcome': outcome });
        this.logger.warn(
          `Commit refused (${outcome === 'fenced' ? 'the partition lease passed to another consumer' : 'the entry was reclaimed or settled elsewhere'}); ` +
            `its effects were discarded and the new owner handles it ${logIds({ stream: entry.stream, group, id: entry.id })}`,
        );
      }
      return outcome;
    } catch (error) {
      this.logger.warn(
        `Commit failed, entry will be redelivered: ${errorText(error)} ${logIds({ stream: entry.stream, id: entry.id })}`,
        logFields({ stream: entry.stream, group, id: entry.id, reason: 'commit-failed', error }),
      );
      return undefined;
    }
  }

  /** Resets the idle time of an entry this consumer still owns (a long handler saying "still working"). */
  async extendClaim(entry: DeliveredEntry): Promise<boolean> {
    const extended = await this.commands.extendClaims(entry.stream, this.config.consumer.group, this.config.consumer.consumerName, [entry.id]);
    return extended === 1;
  }
}
