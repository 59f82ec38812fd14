import type { CliOutput } from './cli-context.js';

/** How many items a human-readable listing shows before it says "and N more". */
export const SAMPLE_SIZE = 20;

/** Writes one line. */
export function line(out: CliOutput, text = ''): void {
  out.write(`${text}\n`);
}

/** Writes a value as JSON (one document, pretty enough to read, valid for `jq`). */
export function writeJson(out: CliOutput, value: unknown): void {
  out.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof RegExp) return String(value);
  if (value === Number.POSITIVE_INFINITY) return null;
  return value;
}

/** Cuts text to `max` characters (with an ellipsis) and flattens line breaks, for table cells. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1))}…`;
}

/** Left-aligned columns separated by two spaces. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const render = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [render(headers), ...rows.map(render)].join('\n');
}

/** The time encoded in an entry id (`<ms>-<seq>`), as ISO 8601. */
export function idTime(entryId: string | undefined): string {
  if (!entryId) return '-';
  const ms = Number(entryId.split('-')[0]);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : '-';
}

export function isoOrDash(date: Date | null | undefined): string {
  return date ? date.toISOString() : '-';
}

/** `1 dead letter`, `3 dead letters`. */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`;
}

/** `850 ms`, `12.3 s`, `4 min 05 s`. */
export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const s = Math.round(ms / 1_000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** "… and N more" after a sample of `shown` out of `total`. */
export function moreLine(out: CliOutput, shown: number, total: number): void {
  if (total > shown) line(out, `  … and ${total - shown} more`);
}
