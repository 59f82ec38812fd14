import { BadRequestException } from '@nestjs/common';
import { MAX_PATTERN_LENGTH } from '../connection/stream-keys.js';

/** Everything the console returns or accepts is bounded: these are the limits. */
export const CONSOLE_LIMITS = {
  /** Rows per page of topics, groups and dead letters. */
  maxPage: 100,
  defaultPage: 25,
  /** Dead letters one redrive or delete names. */
  maxIds: 100,
  /** Characters of one text shown (error messages, payload previews); longer ones are cut with a mark. */
  maxTextChars: 500,
  /** Characters of one field of an inspected dead letter or a schema. */
  maxFieldChars: 64 * 1024,
  /** Fields of an inspected dead letter. */
  maxFields: 100,
} as const;

const ENTRY_ID = /^\d{1,20}-\d{1,20}$/;

/** A text cut to `max` characters, marked when cut. */
export function clip(text: string | null | undefined, max: number = CONSOLE_LIMITS.maxTextChars): string {
  if (text === null || text === undefined) return '';
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/** A pattern from a request: a non-empty string of at most MAX_PATTERN_LENGTH characters. */
export function patternParam(value: unknown, name = 'pattern'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PATTERN_LENGTH) {
    throw new BadRequestException(`${name} must be a non-empty string of at most ${MAX_PATTERN_LENGTH} characters`);
  }
  return value;
}

/** A stream entry id (`<ms>-<seq>`). */
export function entryIdParam(value: unknown, name = 'id'): string {
  if (typeof value !== 'string' || !ENTRY_ID.test(value)) throw new BadRequestException(`${name} must be a stream entry id such as 1700000000000-0`);
  return value;
}

/** 1..maxIds entry ids, from an array or a comma-separated string. */
export function entryIdsParam(value: unknown): string[] {
  const list = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : undefined;
  if (!list || list.length === 0 || list.length > CONSOLE_LIMITS.maxIds) {
    throw new BadRequestException(`ids must name 1 to ${CONSOLE_LIMITS.maxIds} dead letters`);
  }
  return [...new Set(list.map((id) => entryIdParam(id, 'each id')))];
}

/** A page size: 1..maxPage, default defaultPage. */
export function limitParam(value: unknown): number {
  if (value === undefined || value === '') return CONSOLE_LIMITS.defaultPage;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > CONSOLE_LIMITS.maxPage) throw new BadRequestException(`limit must be an integer from 1 to ${CONSOLE_LIMITS.maxPage}`);
  return n;
}

/** An offset into a list: a non-negative integer, default 0. */
export function offsetParam(value: unknown): number {
  if (value === undefined || value === '') return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new BadRequestException('offset must be a non-negative integer');
  return n;
}

/** An optional time: epoch milliseconds or an ISO date. */
export function timeParam(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const ms = typeof value === 'number' ? value : /^\d+$/.test(String(value)) ? Number(value) : Date.parse(String(value));
  if (!Number.isFinite(ms) || ms < 0) throw new BadRequestException(`${name} must be epoch milliseconds or an ISO date`);
  return ms;
}

/** An optional positive integer up to `max`. */
export function positiveParam(value: unknown, name: string, max: number): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new BadRequestException(`${name} must be an integer from 1 to ${max}`);
  return n;
}

/** One page of a list. */
export function page<T>(items: readonly T[], offset: number, limit: number): { items: T[]; total: number; offset: number; limit: number } {
  return { items: items.slice(offset, offset + limit), total: items.length, offset, limit };
}
