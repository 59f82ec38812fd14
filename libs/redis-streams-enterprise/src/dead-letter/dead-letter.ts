import type { StreamEntry } from '../connection/redis-replies.js';
import type { DeadLetterReason } from './dead-letter-reason.js';
import { parseJsonSafely, type MessageHeaders } from '../wire/envelope.js';

/** One dead-lettered message, as `DeadLetterManager` returns it. */
export interface DeadLetter {
  /** Id of the dead-letter entry (its time is when the message was dead-lettered). */
  readonly dlqId: string;
  /** The dead-letter stream it is in. */
  readonly dlqStream: string;
  readonly pattern: string;
  /**
   * Why it was dead-lettered (see DEAD_LETTER_REASONS). Typed as any string too: entries written by another (newer)
   * version of the library or by hand may carry a reason this version does not know.
   */
  readonly reason: DeadLetterReason | (string & {});
  readonly originalId: string;
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly errorName: string;
  readonly errorMessage: string;
  readonly errorCode: string;
  readonly deliveries: number;
  readonly firstFailedAt: Date | null;
  readonly lastFailedAt: Date | null;
  readonly messageId: string | null;
  /** The payload, parsed; `undefined` when it is missing or not valid JSON (see `rawData`). */
  readonly data: unknown;
  readonly rawData: string | null;
  readonly headers: MessageHeaders;
  /** Every field of the dead-letter entry as stored. */
  readonly fields: Readonly<Record<string, string>>;
}

const parseTime = (value: string | undefined) => (value && /^\d+$/.test(value) ? new Date(Number(value)) : null);

function parseOrUndefined(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return parseJsonSafely(text);
  } catch {
    return undefined; // the raw text is kept in rawData (undecodable payloads are a reason to dead-letter)
  }
}

/** Turns a stored dead-letter entry into a `DeadLetter`. */
export function toDeadLetter(entry: StreamEntry, dlqStream: string): DeadLetter {
  const f = entry.fields;
  const headers = parseOrUndefined(f.headers);
  return {
    dlqId: entry.id,
    dlqStream,
    pattern: f.pattern ?? '',
    reason: f['rse.dlq.reason'] ?? '',
    originalId: f['rse.dlq.originalId'] ?? '',
    stream: f['rse.dlq.stream'] ?? '',
    group: f['rse.dlq.group'] ?? '',
    consumer: f['rse.dlq.consumer'] ?? '',
    errorName: f['rse.dlq.errorName'] ?? '',
    errorMessage: f['rse.dlq.errorMessage'] ?? '',
    errorCode: f['rse.dlq.errorCode'] ?? '',
    // Ordered topics retry in place: their attempts are recorded apart from Redis's delivery counter.
    deliveries: Number(f['rse.dlq.attempts'] ?? f['rse.dlq.deliveries'] ?? 0),
    firstFailedAt: parseTime(f['rse.dlq.firstFailedAt']),
    lastFailedAt: parseTime(f['rse.dlq.lastFailedAt']),
    messageId: f.id ?? null,
    data: parseOrUndefined(f.data),
    rawData: f.data ?? null,
    headers: typeof headers === 'object' && headers !== null ? (headers as MessageHeaders) : {},
    fields: f,
  };
}

/** Which dead letters an operation applies to. Every criterion given must match. */
export interface DeadLetterFilter {
  /** Only letters dead-lettered at or after this time. */
  readonly from?: Date | number;
  /** Only letters dead-lettered at or before this time. */
  readonly to?: Date | number;
  /** Only this reason (`max-deliveries`, `decode-failed`, `no-handler`, `rejected`). */
  readonly reason?: string;
  /** Only letters of this consumer group. */
  readonly group?: string;
  /** Only errors of this name (e.g. `TypeError`). */
  readonly errorName?: string;
  /** Only errors whose message contains this text or matches this expression. */
  readonly errorMessage?: string | RegExp;
  /** Only messages whose own pattern is this (a stream may carry entries of another pattern). */
  readonly messagePattern?: string;
  /** Any other condition on the decoded letter. */
  readonly where?: (letter: DeadLetter) => boolean;
}

export function matches(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.reason !== undefined && letter.reason !== filter.reason) return false;
  if (filter.group !== undefined && letter.group !== filter.group) return false;
  if (filter.errorName !== undefined && letter.errorName !== filter.errorName) return false;
  if (filter.messagePattern !== undefined && letter.pattern !== filter.messagePattern) return false;
  if (filter.errorMessage !== undefined) {
    const ok =
      typeof filter.errorMessage === 'string'
        ? letter.errorMessage.includes(filter.errorMessage)
        : filter.errorMessage.test(letter.errorMessage);
    if (!ok) return false;
  }
  return filter.where ? filter.where(letter) : true;
}

/** XRANGE bounds for a time filter (entry ids start with their time in ms). */
export function rangeOf(filter: DeadLetterFilter): { start: string; end: string } {
  const ms = (t: Date | number) => (t instanceof Date ? t.getTime() : t);
  return {
    start: filter.from === undefined ? '-' : String(Math.max(0, Math.floor(ms(filter.from)))),
    end: filter.to === undefined ? '+' : String(Math.floor(ms(filter.to))),
  };
}
