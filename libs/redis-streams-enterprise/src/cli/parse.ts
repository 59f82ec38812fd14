import { userInfo } from 'node:os';
import { ACTOR } from '../config/compliance.options.js';
import { InvalidArgumentError } from './command-line.js';

const DIGITS = /^\d+$/;
const ENTRY_ID = /^\d+(-\d+)?$/;
/** ISO 8601 dates and date-times (`2026-11-26`, `2026-11-26T12:00:00Z`, `2026-11-26T12:00:00.123+01:00`). */
const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** `--from`/`--to`: epoch milliseconds or an ISO 8601 time; returns epoch ms. */
export function parseTime(value: string): number {
  const text = value.trim();
  if (DIGITS.test(text)) {
    const ms = Number(text);
    if (Number.isSafeInteger(ms)) return ms;
  } else if (ISO.test(text)) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms) && ms >= 0) return ms;
  }
  throw new InvalidArgumentError('expected an ISO 8601 time (e.g. 2026-11-26T12:00:00Z) or epoch milliseconds.');
}

/** `--limit`, `--max`: a positive integer. */
export function parsePositiveInt(value: string): number {
  const n = DIGITS.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

/** `--start-id`, `--end-id`, `<dlqId>`: a stream entry id `<ms>-<seq>` (or `<ms>`). */
export function parseEntryId(value: string): string {
  const text = value.trim();
  if (!ENTRY_ID.test(text)) throw new InvalidArgumentError('expected a stream entry id like 1764201600000-0.');
  return text;
}

/** `--prefix`: checked by the library's configuration too; this gives the earlier, option-named message. */
export function parsePrefix(value: string): string {
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(value)) {
    throw new InvalidArgumentError('expected 1-64 characters of A-Z a-z 0-9 . _ : -');
  }
  return value;
}

/** `--actor`: one line of 1-200 characters (it is written to the audit trail). */
export function parseActor(value: string): string {
  if (!ACTOR.test(value)) throw new InvalidArgumentError('expected 1-200 characters without control characters');
  return value;
}

/** The default `--actor`: the OS user running the command (`unknown` where the system has no name for it). */
export function osUser(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown'; // a uid without a passwd entry (some containers)
  }
}
