import { createHash } from 'node:crypto';
import { InvalidPatternError } from '../errors/invalid-pattern.error.js';

/** Longest pattern accepted as a route. */
export const MAX_PATTERN_LENGTH = 1_024;
/** Patterns made only of these characters (and not too long) name their stream directly. */
const READABLE_TAG = /^[A-Za-z0-9._:/@-]{1,200}$/;
const REPLY_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The one place that names Redis keys. Every key of one pattern shares the hash tag `{<tag>}`, so the stream,
 * its dead-letter stream and its retry schedules live in one Redis Cluster slot and one Lua script may touch
 * them all. Nothing else in the library concatenates key strings.
 *
 *   <prefix>:{<tag>}                  the pattern's stream
 *   <prefix>:{<tag>}:dlq              its dead-letter stream
 *   <prefix>:{<tag>}:retry:<group>    sorted set: entry id -> time its next attempt is due, per consumer group
 *   <prefix>:{<tag>}:failures:<group> hash: entry id -> time of its first failure (while it is being retried)
 *   <prefix>:{<tag>}:replayed         set: '<source stream>/<entry id>' copied into this stream by replay
 *   <prefix>:{reply:<clientId>}       reply stream of one client instance
 *   <prefix>:{#doorbell}              Redis Cluster only: stream where producers name the streams they wrote to
 *                                     (no pattern's tag can be `#doorbell`: patterns with `#` are hashed)
 *   <prefix>:{#consumer:<group>:<name>}  string '<host>/<pid>/<random>' (expires): the live instance using this
 *                                     consumer name in the group (transport/consumer-name-lease.ts); used alone, so
 *                                     any slot will do, and like the doorbell's no pattern's tag can start with `#`
 *   <prefix>:{#audit}                 stream: the audit trail of operator actions (observability/audit-trail.ts); the `#`
 *                                     keeps it apart from a pattern named `audit`, as for the doorbell
 *   <prefix>:{schema:<type>}:versions hash: schema version -> canonical JSON Schema of an event type
 *   <prefix>:{schema:<type>}:order    list: the versions in registration order
 *
 * Partitioned topics (partitioning or ordering enabled): partition <n> of a pattern is its own stream with its own
 * hash tag, so partitions spread over Cluster slots while everything one partition's scripts touch stays in one:
 *   <prefix>:{<tag>#<n>}                       partition stream (with :dlq, :retry:<group>, :failures:<group> as above)
 *   <prefix>:{<tag>#<n>}:lease:<group>         string '<consumer>|<token>': the one consumer that owns the partition
 *   <prefix>:{<tag>#<n>}:fence:<group>         counter: lease tokens, increasing with every new owner (fencing)
 *   <prefix>:{<tag>#<n>}:epoch                 layout epoch the partition accepts writes for (stale producers refused)
 *   <prefix>:{<tag>#<n>}:drained:<group>:<e>   set once the group processed every entry written before epoch e
 *   <prefix>:{<tag>}:layout                    JSON {epoch, counts[]}: partition count of every layout epoch
 *   <prefix>:{<tag>}:members:<group>           sorted set: live consumers of the group -> lease expiry (ms)
 *   <prefix>:{<tag>}:scaler                    lease of the one consumer that may change the partition count
 * Exactly-once and ordering records, beside the stream (or partition) they belong to:
 *   <stream>:seq                               counter: global sequence numbers stamped at publish
 *   <stream>:pub:<key>                         entry id of a publish with idempotency key <key> (expires after the window)
 *   <stream>:done:<group>:<key>                set when the group processed the message <key> (expires after the window)
 *   <prefix>:{causal:<group>:<key>}            set when the group handled message <key> (causal dependencies)
 * Claim-check (large payloads), beside the stream (or partition) whose entry refers to them:
 *   <stream>:blob:<blob id>                    string: the payload's JSON, referenced by an entry's `blob` field
 *   <stream>:blobs                             sorted set: blob id -> ms time of the newest entry of <stream> using it
 *   <stream>:dlq:blobs                         the same for dead letters of <stream> (keeps their blobs alive)
 * Cross-region replication (replication/), beside the stream (or partition) copied into:
 *   <stream>:mirror:<source region>            hash {id, n, copied}: checkpoint of the mirror from that region (last
 *                                              source entry id covered, its ordinal in the source, entries copied)
 */
export class StreamKeys {
  constructor(readonly prefix: string) {}

  /**
   * The hash tag of a pattern: the pattern itself when it is short and made of safe characters, otherwise
   * `h.` + the first 32 hex digits of its SHA-256 (object patterns such as `{"cmd":"sum"}` contain braces,
   * which would change the Cluster slot, and quotes, which make keys hard to read).
   */
  tagOf(pattern: string): string {
    if (pattern.length === 0) throw new InvalidPatternError(pattern, 'it is empty');
    if (pattern.length > MAX_PATTERN_LENGTH) {
      throw new InvalidPatternError(pattern, `it is longer than ${MAX_PATTERN_LENGTH} characters`);
    }
    if (READABLE_TAG.test(pattern)) return pattern;
    return `h.${createHash('sha256').update(pattern).digest('hex').slice(0, 32)}`;
  }

  stream(pattern: string): string {
    return `${this.prefix}:{${this.tagOf(pattern)}}`;
  }

  deadLetter(pattern: string): string {
    return `${this.stream(pattern)}:dlq`;
  }

  retrySchedule(pattern: string, group: string): string {
    return `${this.stream(pattern)}:retry:${group}`;
  }

  failures(pattern: string, group: string): string {
    return `${this.stream(pattern)}:failures:${group}`;
  }

  /** Source entries already copied into a pattern's stream by replay (dedupe set, same slot as the stream). */
  replayDedupe(pattern: string): string {
    return `${this.stream(pattern)}:replayed`;
  }

  /** Schema versions of an event type (hash: version -> canonical JSON Schema); one hash tag per event type. */
  schemaVersions(eventType: string): string {
    return `${this.prefix}:{schema:${this.tagOf(eventType)}}:versions`;
  }

  /** Registration order of an event type's schema versions (list). */
  schemaOrder(eventType: string): string {
    return `${this.prefix}:{schema:${this.tagOf(eventType)}}:order`;
  }

  /** Partition `n` of a pattern's topic. */
  partition(pattern: string, n: number): string {
    return `${this.prefix}:{${this.tagOf(pattern)}#${n}}`;
  }

  /** Dead-letter stream beside any stream (a pattern's stream or one of its partitions). */
  deadLetterOf(stream: string): string {
    return `${stream}:dlq`;
  }

  /** The stream a dead-letter stream belongs to (inverse of deadLetterOf). */
  streamOfDeadLetter(deadLetterStream: string): string {
    return deadLetterStream.endsWith(':dlq') ? deadLetterStream.slice(0, -':dlq'.length) : deadLetterStream;
  }

  retryScheduleOf(stream: string, group: string): string {
    return `${stream}:retry:${group}`;
  }

  failuresOf(stream: string, group: string): string {
    return `${stream}:failures:${group}`;
  }

  leaseOf(stream: string, group: string): string {
    return `${stream}:lease:${group}`;
  }

  fenceOf(stream: string, group: string): string {
    return `${stream}:fence:${group}`;
  }

  epochOf(stream: string): string {
    return `${stream}:epoch`;
  }

  drainedOf(stream: string, group: string, epoch: number): string {
    return `${stream}:drained:${group}:${epoch}`;
  }

  sequenceOf(stream: string): string {
    return `${stream}:seq`;
  }

  publishedOf(stream: string, idempotencyKey: string): string {
    return `${stream}:pub:${this.safeSuffix(idempotencyKey)}`;
  }

  processedOf(stream: string, group: string, messageKey: string): string {
    return `${stream}:done:${group}:${this.safeSuffix(messageKey)}`;
  }

  /** Marker of a handled message for causal dependencies (its own slot: read by consumers of any partition). */
  causalDone(group: string, messageKey: string): string {
    return `${this.prefix}:{causal:${group}:${this.tagOf(messageKey)}}`;
  }

  layout(pattern: string): string {
    return `${this.stream(pattern)}:layout`;
  }

  members(pattern: string, group: string): string {
    return `${this.stream(pattern)}:members:${group}`;
  }

  scaler(pattern: string): string {
    return `${this.stream(pattern)}:scaler`;
  }

  /** Claim-checked payload of an entry of `stream` (its `blob` field holds `blobId`); same slot as the stream. */
  blobOf(stream: string, blobId: string): string {
    return `${stream}:blob:${this.safeSuffix(blobId)}`;
  }

  /**
   * Index of the blobs referenced from `stream` (a stream or a dead-letter stream): blob id -> ms time of the entry,
   * so blobs whose entries were trimmed can be found and removed.
   */
  blobIndexOf(stream: string): string {
    return `${stream}:blobs`;
  }

  /** Checkpoint of the mirror copying from `sourceRegion` into `stream` (replication/): same slot as the stream. */
  mirrorCheckpointOf(stream: string, sourceRegion: string): string {
    return `${stream}:mirror:${this.safeSuffix(sourceRegion)}`;
  }

  /** Glob of every key that may be a topic's stream or partition under this prefix (SCAN MATCH; check with topicStreamOf). */
  topicStreamGlob(): string {
    return `${this.prefix}:{*}`;
  }

  /**
   * The tag and partition of a topic's stream (`<prefix>:{<tag>}` or `<prefix>:{<tag>#<n>}`), or undefined for any
   * other key (reply streams, the doorbell, schema and causal keys, keys with a suffix).
   */
  topicStreamOf(key: string): { tag: string; partition?: number } | undefined {
    const start = `${this.prefix}:{`;
    if (!key.startsWith(start) || !key.endsWith('}')) return undefined;
    const inner = key.slice(start.length, -1);
    if (inner.includes('{') || inner.includes('}') || /^(#|reply:|schema:|causal:)/.test(inner)) return undefined;
    const partitioned = /^(.+)#(\d{1,6})$/.exec(inner);
    const tag = partitioned ? partitioned[1] : inner;
    if (!/^[A-Za-z0-9._:/@-]{1,200}$/.test(tag) && !/^h\.[0-9a-f]{32}$/.test(tag)) return undefined;
    return partitioned ? { tag, partition: Number(partitioned[2]) } : { tag };
  }

  /** A topic's stream (partition undefined) or partition stream, by its tag (see tagOf). */
  streamOfTag(tag: string, partition?: number): string {
    return partition === undefined ? `${this.prefix}:{${tag}}` : `${this.prefix}:{${tag}#${partition}}`;
  }

  /** The partition layout of a topic, by its tag. */
  layoutOfTag(tag: string): string {
    return `${this.streamOfTag(tag)}:layout`;
  }

  /** Keys end in user-given strings: printable ASCII up to 200 characters as they are, anything else hashed. */
  private safeSuffix(text: string): string {
    return /^[\x21-\x7e]{1,200}$/.test(text) ? text : `h.${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
  }

  /** Glob of every dead-letter stream under this prefix. */
  deadLetterGlob(): string {
    return `${this.prefix}:{*}:dlq`;
  }

  /** The doorbell of this prefix (cluster/doorbell.ts). */
  doorbell(): string {
    return `${this.prefix}:{#doorbell}`;
  }

  /** The audit trail of operator actions (observability/audit-trail.ts); used alone, so any slot will do. */
  audit(): string {
    return `${this.prefix}:{#audit}`;
  }

  /** Presence lease of one consumer name in a group: at most one live instance uses a name (single-key operations only). */
  consumerNameLease(group: string, consumerName: string): string {
    return `${this.prefix}:{#consumer:${group}:${consumerName}}`;
  }

  replyStream(clientId: string): string {
    return `${this.prefix}:{reply:${clientId}}`;
  }

  /**
   * True when `key` is a reply stream of this deployment (`<prefix>:{reply:<id>}`, id of 1-128 characters
   * `[A-Za-z0-9._-]`). A request's `replyTo` comes from the message, so a consumer writes its reply only there: a
   * forged address can never make it write into another key.
   */
  isReplyStream(key: string): boolean {
    const start = `${this.prefix}:{reply:`;
    return key.startsWith(start) && key.endsWith('}') && REPLY_ID.test(key.slice(start.length, -1));
  }

  /** Glob matching every key this prefix owns (for operators and test clean-up). */
  allKeysGlob(): string {
    return `${this.prefix}:*`;
  }
}
