/**
 * The Redis write of one encoded entry, apart from the client (which routes, encodes and tracks requests): writing
 * has several paths of its own (plain XADD or the atomic publish script, the claim-check upload, WAIT for replicas,
 * the resend of a write a Redis Cluster redirected) and, on a Cluster, the doorbell ring once the entry is stored.
 * A write whose connection failed while it was in flight fails with AmbiguousWriteError (it may be stored); one that
 * was never sent with RedisUnavailableError.
 */
import { ReplyError, type Cluster, type Redis } from 'ioredis';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { isCluster } from '../connection/redis-connection.factory.js';
import { isClusterRetryable, isInFlightCommandLost, isUnsentCommandError } from '../connection/redis-error-codes.js';
import { defineScripts, type ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { AmbiguousWriteError } from '../errors/ambiguous-write.error.js';
import { RedisStreamsError } from '../errors/redis-streams.error.js';
import { RedisUnavailableError } from '../errors/redis-unavailable.error.js';
import { ReplicationTimeoutError } from '../errors/replication-timeout.error.js';
import { ClaimCheckLostError } from '../errors/claim-check-lost.error.js';
import { keySlot } from '../cluster/key-slot.js';
import { DoorbellRinger, usesDoorbell } from '../cluster/doorbell.js';
import { ProducerRetention } from '../retention/producer-retention.js';
import { retentionLimits } from '../retention/stream-retention.js';
import { BLOB_UPLOAD_TTL_MS } from '../claim-check/claim-check.js';
import type { BlobReference } from '../wire/envelope.js';
import { ReplicaWaiter } from './replica-waiter.js';
import { PublishBatcher } from './publish-batcher.js';
import { sleep } from '../runtime/sleeper.js';

/** A claim-checked payload: its JSON goes to its own key, uploaded in the pipeline that writes its entry. */
export interface ClaimCheckedPayload {
  readonly ref: BlobReference;
  readonly json: string;
}

export interface PublishOptions {
  /** The envelope's message id, named by AmbiguousWriteError. */
  readonly messageId: string;
  readonly idempotencyKey?: string;
  /** Partition layout epoch the publish script checks (only where the topic's partition count can change). */
  readonly epoch?: number;
  readonly blob?: ClaimCheckedPayload;
}

/**
 * `ok`: stored with `id`; `duplicate`: the idempotency key was seen within the window, `id` is the first entry's;
 * `stale`: refused because the topic's partition layout changed (route again).
 */
export interface PublishOutcome {
  status: 'ok' | 'duplicate' | 'stale';
  id: string;
}

type PipelineResults = [Error | null, unknown][];

/** What one pipeline sends: the upload (claim check), then the write (script or XADD). */
interface PipelineWrite {
  readonly stream: string;
  readonly fields: string[];
  readonly trim: (string | number)[];
  /** The publish script's arguments; undefined: a plain XADD. */
  readonly scriptArgs?: (string | number)[];
  readonly blob?: ClaimCheckedPayload;
  readonly blobKey?: string;
}

export class EntryPublisher {
  /** With the doorbell (always on a Cluster): tells consumers which streams got entries (cluster/doorbell.ts). */
  private doorbell?: DoorbellRinger;
  /** With connection.waitReplicas: one WAIT coordinator per writing connection (replica-waiter.ts). */
  private readonly waiters = new WeakMap<Redis, ReplicaWaiter>();
  /** Retention steps every few writes per stream (retention/producer-retention.ts); created on the first write. */
  private retention?: ProducerRetention;
  /** Scripted writes without replicas to wait for or a payload to upload go in one script call per stream and turn. */
  private readonly batcher = new PublishBatcher();

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly keys: StreamKeys,
    /** The command connection once it is ready (the caller decides how long an outage may be waited out). */
    private readonly readyConnection: () => Promise<Redis>,
  ) {}

  /**
   * XADD, or the publish script when the message needs an atomic check (then the replicas' confirmation when
   * connection.waitReplicas is set), on a ready connection. A duplicate (idempotency key seen within the window)
   * resolves with the first id. A claim-checked payload is uploaded in the same pipeline, right before the script that
   * commits it with the entry. A stored entry is announced on the doorbell (always on a Cluster; `streams.doorbell`).
   * @throws AmbiguousWriteError when the connection failed with the write in flight (it may be stored);
   * RedisUnavailableError when it failed before the write was sent.
   */
  async publish(stream: string, fields: string[], options: PublishOptions): Promise<PublishOutcome> {
    const command = (await this.readyConnection()) as ScriptedRedis;
    let outcome: PublishOutcome;
    try {
      outcome = await this.write(command, stream, fields, options);
    } catch (error) {
      throw publishError(stream, options.messageId, error);
    }
    if (outcome.status === 'ok') this.ringFor(command, stream);
    return outcome;
  }

  /** Sends the writes waiting for the end of the turn now (the client's close). */
  flushQueued(): void {
    this.batcher.flushAll();
  }

  /** Resolves once every doorbell ring asked for so far was sent (or failed); undefined when nothing ever rang. */
  drainRings(): Promise<void> | undefined {
    return this.doorbell?.drain();
  }

  /** With the doorbell, names the stream on it so that consumers read it now rather than at their sweep. */
  private ringFor(command: Redis, stream: string): void {
    if (this.doorbell === undefined && !usesDoorbell(command, this.config.streams.doorbell)) return;
    this.doorbell ??= new DoorbellRinger(command, this.keys.doorbell());
    this.doorbell.ring(stream);
  }

  private async write(command: ScriptedRedis, stream: string, fields: string[], options: PublishOptions): Promise<PublishOutcome> {
    const sequence = this.config.ordering.enabled && this.config.ordering.strategy === 'global';
    const blob = options.blob;
    const blobKey = blob ? this.keys.blobOf(stream, blob.ref.id) : undefined;
    const scripted = options.idempotencyKey !== undefined || sequence || options.epoch !== undefined || blob !== undefined;
    const trim = this.trimArgs(stream);
    if (this.config.connection.waitReplicas === 0 && !blob) {
      // The writes of this turn to the stream go together: one script call, or one pipeline (publish-batcher.ts).
      let result;
      if (scripted) {
        const shape = { sequenceKey: this.keys.sequenceOf(stream), epochKey: this.keys.epochOf(stream), windowMs: this.config.exactlyOnce.windowMs, sequence, trim };
        const recordKey = options.idempotencyKey === undefined ? undefined : this.keys.publishedOf(stream, options.idempotencyKey);
        result = await this.batcher.add(command, stream, shape, { fields, recordKey, epoch: options.epoch });
      } else {
        result = await this.batcher.addPlain(command, stream, trim, fields);
      }
      if (result.status === 'error') throw new ReplyError(`Redis refused the write of the entry: ${result.reason}`);
      return result;
    }
    // Anything queued for the stream goes first: the producer's writes keep their order whatever path each takes.
    this.batcher.flush(stream);
    const scriptArgs = scripted ? this.scriptArgs(stream, fields, options, { sequence, trim, blobKey }) : undefined;
    const write: PipelineWrite = { stream, fields, trim, scriptArgs, blob, blobKey };
    const sent = { hasBlob: blob !== undefined, scripted };
    if (this.config.connection.waitReplicas > 0) return this.writeAndWaitForReplicas(command, write, sent);
    return this.outcomeOf(stream, await this.resendWhileRedirected(command, write, () => this.runPipeline(command, write)), sent);
  }

  /**
   * The write on the connection that stores it (on a Cluster, the connection to the master of the stream's slot:
   * WAIT only counts the writes of its own connection), then the confirmation of that connection's ReplicaWaiter,
   * which coalesces the WAITs of concurrent writes and bounds each emit's wait by waitTimeoutMs (replica-waiter.ts).
   * Only a stored entry ('ok') waits; ReplicationTimeoutError carries its id.
   */
  private async writeAndWaitForReplicas(
    command: ScriptedRedis,
    write: PipelineWrite,
    sent: { hasBlob: boolean; scripted: boolean },
  ): Promise<PublishOutcome> {
    const { waitReplicas, waitTimeoutMs } = this.config.connection;
    let waiter: ReplicaWaiter | undefined;
    let beforeWrite: ReturnType<ReplicaWaiter['beforeWrite']> | undefined;
    const results = await this.resendWhileRedirected(command, write, async () => {
      const target = await this.connectionOf(command, write.stream);
      waiter = this.waiters.get(target);
      if (!waiter) this.waiters.set(target, (waiter = new ReplicaWaiter(target, waitReplicas, waitTimeoutMs)));
      beforeWrite = waiter.beforeWrite();
      return this.runPipeline(target === command ? command : defineScripts(target), write);
    });
    const outcome = this.outcomeOf(write.stream, results, sent);
    if (outcome.status !== 'ok' || !waiter || !beforeWrite) return outcome;
    let confirmed: number;
    try {
      confirmed = await waiter.confirm(beforeWrite);
    } catch (error) {
      // The entry is stored (its reply came); only its replication could not be checked.
      throw new ReplicationTimeoutError(outcome.id, 0, waitReplicas, { cause: error });
    }
    if (confirmed < waitReplicas) throw new ReplicationTimeoutError(outcome.id, confirmed, waitReplicas);
    return outcome;
  }

  /**
   * The connection a write of `stream` goes out on: the command connection, or on a Cluster the connection to the
   * master of the stream's slot by the current slot map (a stale map shows as MOVED, which resendWhileRedirected
   * handles). Writes then bypass the Cluster's routing, so the node connections get the library's scripts too.
   */
  private async connectionOf(command: ScriptedRedis, stream: string): Promise<Redis> {
    const connection = command as unknown as Redis | Cluster;
    if (!isCluster(connection)) return command;
    const master = () => {
      const key = connection.slots[keySlot(stream)]?.[0];
      return key === undefined ? undefined : connection.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === key);
    };
    let node = master();
    if (!node) {
      await new Promise<void>((resolve) => connection.refreshSlotsCache(() => resolve()));
      node = master();
    }
    if (!node) throw new RedisUnavailableError(`no master of the Redis Cluster is known for the slot of "${stream}"`);
    return node;
  }

  /**
   * The upload and the write, in one pipeline on one connection. The upload expires unless the script commits it,
   * so a producer dying in between leaves nothing behind for long.
   */
  private async runPipeline(command: ScriptedRedis, write: PipelineWrite): Promise<PipelineResults> {
    const pipeline = command.pipeline() as ReturnType<Redis['pipeline']> & { rsePublish(...args: (string | number)[]): unknown };
    if (write.blob && write.blobKey) pipeline.set(write.blobKey, write.blob.json, 'PX', BLOB_UPLOAD_TTL_MS);
    if (write.scriptArgs) pipeline.rsePublish(...write.scriptArgs);
    else pipeline.xadd(write.stream, ...write.trim, '*', ...write.fields);
    return ((await pipeline.exec()) ?? []) as PipelineResults;
  }

  /**
   * On a Cluster, ioredis retries a pipeline only when all its commands failed alike (the upload may succeed where the
   * write is refused), and a write sent straight to a master's connection is not redirected at all: a write refused
   * with MOVED/ASK/TRYAGAIN/CLUSTERDOWN (not executed, so safe to resend) is sent again here once the slot map is
   * refreshed, a few times with a growing pause (a failover takes seconds).
   */
  private async resendWhileRedirected(
    command: ScriptedRedis,
    write: PipelineWrite,
    send: () => Promise<PipelineResults>,
  ): Promise<PipelineResults> {
    let results = await send();
    const connection = command as unknown as Redis | Cluster;
    const writeAt = write.blob ? 1 : 0;
    const writeNotExecuted = () => {
      const error = results[writeAt]?.[0];
      return error !== null && error !== undefined && isClusterRetryable(error);
    };
    for (let attempt = 1; attempt <= 8 && isCluster(connection) && writeNotExecuted(); attempt++) {
      await new Promise<void>((resolve) => connection.refreshSlotsCache(() => resolve()));
      await sleep(Math.min(1_000, 100 * attempt));
      results = await send();
    }
    return results;
  }

  /** The outcome of a pipelined write, or the first error of the upload or the write. */
  private outcomeOf(stream: string, results: PipelineResults, sent: { hasBlob: boolean; scripted: boolean }): PublishOutcome {
    const at = sent.hasBlob ? 1 : 0;
    const uploadError = sent.hasBlob ? results[0]?.[0] : null;
    if (uploadError) throw uploadError;
    const [addError, added] = results[at] ?? [new Error('the pipeline returned no reply for the write'), undefined];
    if (addError) throw addError;
    return sent.scripted ? parseScriptReply(stream, added) : { status: 'ok' as const, id: String(added) };
  }

  /** Keys and arguments of the publish script (connection/scripts), in its KEYS/ARGV order. */
  private scriptArgs(
    stream: string,
    fields: string[],
    options: PublishOptions,
    extra: { sequence: boolean; trim: (string | number)[]; blobKey?: string },
  ): (string | number)[] {
    const { sequence, trim, blobKey } = extra;
    const blob = options.blob;
    return [
      stream,
      options.idempotencyKey === undefined ? stream : this.keys.publishedOf(stream, options.idempotencyKey),
      this.keys.sequenceOf(stream),
      this.keys.epochOf(stream),
      blobKey ?? stream,
      blob ? this.keys.blobIndexOf(stream) : stream,
      options.idempotencyKey === undefined ? '0' : '1',
      this.config.exactlyOnce.windowMs,
      sequence ? '1' : '0',
      options.epoch === undefined ? '' : String(options.epoch),
      trim.length > 0 ? trim[0] : '',
      trim.length > 0 ? trim[2] : '',
      blob ? blob.ref.id : '',
      ...fields,
    ];
  }

  /**
   * Trim arguments of the write. 'safe' trimming never trims inline (XADD cannot know what the groups still need):
   * every few writes per stream, ProducerRetention runs the retention step instead; 'hard' trims inline as always, and
   * the same step warns about groups close to losing entries.
   */
  private trimArgs(stream: string): (string | number)[] {
    const limits = retentionLimits(this.config.streams);
    if (!limits) return [];
    this.retention ??= new ProducerRetention(limits, this.readyConnection);
    this.retention.noteWrite(stream);
    if (limits.trimming === 'safe') return [];
    if (limits.maxLen !== undefined) return ['MAXLEN', '~', limits.maxLen];
    if (limits.retentionMs !== undefined) return ['MINID', '~', `${Date.now() - limits.retentionMs}-0`];
    return [];
  }
}

/**
 * The error a failed publish settles with. The connection failing while the write was in flight is ambiguous (Redis
 * may have stored it, and consumers may handle it); failing before it was sent means nothing was written. Library
 * errors and Redis error replies (the command was refused) pass through.
 */
function publishError(stream: string, messageId: string, error: unknown): unknown {
  if (error instanceof RedisStreamsError) return error;
  if (isUnsentCommandError(error)) return new RedisUnavailableError('the connection dropped before the write was sent', { cause: error });
  if (isInFlightCommandLost(error)) return new AmbiguousWriteError(stream, messageId, error);
  return error;
}

function parseScriptReply(stream: string, reply: unknown): PublishOutcome {
  const [status, id] = reply as [string, string];
  if (status === 'blob-missing') {
    throw new ClaimCheckLostError(stream);
  }
  return { status: status as PublishOutcome['status'], id: String(id) };
}
