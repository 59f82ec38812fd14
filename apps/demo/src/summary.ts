/** Formatting of the demo's summary table (plain text, fixed-width, no colours so it survives logs and CI). */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export const fmt = {
  int: (n: number) => integer.format(n),
  ms: (n: number) => (n >= 10_000 ? `${decimal.format(n / 1_000)} s` : `${integer.format(n)} ms`),
  latency: (n: number) => `${decimal.format(n)} ms`,
  rate: (count: number, ms: number) => (ms > 0 ? integer.format((count * 1_000) / ms) : 'n/a'),
  money: (cents: number) => money.format(cents / 100),
};

export type Row = readonly [label: string, value: string, ok?: boolean];

/** Renders rows as a two-column table; rows with `ok === false` are marked so a failure is easy to spot. */
export function renderTable(title: string, rows: readonly Row[]): string {
  const labelWidth = Math.max(...rows.map(([label]) => label.length), 6);
  const valueWidth = Math.max(...rows.map(([, value]) => value.length), 5);
  const line = `  +${'-'.repeat(labelWidth + 2)}+${'-'.repeat(valueWidth + 2)}+-----+`;
  const out = ['', `  ${title}`, line, `  | ${'metric'.padEnd(labelWidth)} | ${'value'.padEnd(valueWidth)} | ok  |`, line];
  for (const [label, value, ok] of rows) {
    const mark = ok === undefined ? '   ' : ok ? 'yes' : 'NO ';
    out.push(`  | ${label.padEnd(labelWidth)} | ${value.padEnd(valueWidth)} | ${mark} |`);
  }
  out.push(line);
  return out.join('\n');
}

/** Percentile of a list of numbers (nearest rank). */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
