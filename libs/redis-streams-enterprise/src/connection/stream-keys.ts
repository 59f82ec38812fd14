import { createHash } from 'node:crypto';
import { InvalidPatternError } from '../errors/invalid-pattern.error.js';

/** Longest pattern accepted as a route. */
export const MAX_PATTERN_LENGTH = 1_024;
/** Patterns made only of these characters (and not too long) name their stream directly. */
const READABLE_TAG = /^[A-Za-z0-9._:/@-]{1,200}$/;

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
 *   <prefix>:{schema:<type>}:versions hash: schema version -> canonical JSON Schema of an event type
 *   <prefix>:{schema:<type>}:order    list: the versions in registration order
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

  /** Glob of every dead-letter stream under this prefix. */
  deadLetterGlob(): string {
    return `${this.prefix}:{*}:dlq`;
  }

  replyStream(clientId: string): string {
    return `${this.prefix}:{reply:${clientId}}`;
  }

  /** Glob matching every key this prefix owns (for operators and test clean-up). */
  allKeysGlob(): string {
    return `${this.prefix}:*`;
  }
}
