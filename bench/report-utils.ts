/**
 * Helpers the ordering and all-features measurements share: settings from the environment, medians, number
 * formatting, the plain-text tables and the clean-up of a run's keys. No Nest and no library import here.
 */
import type { Redis } from 'ioredis';

export function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min} (got "${raw}")`);
  return value;
}

/** Median of the finite values; NaN when there is none. */
export function median(values: number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

export function fmt(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A plain-text table: columns from `rightAlignFrom` on are right-aligned. */
export function table(header: string[], rows: string[][], rightAlignFrom: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i >= rightAlignFrom ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Distinct keys matching a SCAN pattern (SCAN may return a key twice, hence the set; a run's key space is small). */
export async function countKeys(admin: Redis, match: string): Promise<number> {
  const found = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', match, 'COUNT', 1_000);
    cursor = next;
    for (const key of keys) found.add(key);
  } while (cursor !== '0');
  return found.size;
}

/** Deletes every key of a run (`<prefix>:*`) with SCAN + UNLINK; never FLUSHALL. */
export async function unlinkPrefix(admin: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1_000);
    cursor = next;
    if (keys.length > 0) await admin.unlink(...keys);
  } while (cursor !== '0');
}
