import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Ledgers: one append-only JSON-lines file per process incarnation, in the run directory, outside the Redis the
 * nemesis attacks (so no fault can lose or delay a record, and recording adds no Redis load). Each record is one
 * write(2) on an O_APPEND descriptor, without fsync: SIGKILL does not lose what was written (it is in the page
 * cache), and the soak never crashes the kernel. A process killed in the middle of a write leaves at most one torn
 * last line, which the reader skips.
 *
 * Producer records:  {t:'a', topic, id, key?, seq, poison?}  before the emit (attempt)
 *                    {t:'ok', id, entry}                      the emit resolved (Redis stored it)
 *                    {t:'f', id, err, definite}               the emit failed (definite: certainly not stored)
 *                    {t:'rq', id} / {t:'rp', id, ok} / {t:'rf', id, err}   requests and their replies
 * Consumer records:  {t:'s', topic, id, h, c, p?, dc, ts}     a handling started (h: handling id, c: consumer)
 *                    {t:'e', h, ts}                          it finished (before the ack / commit)
 *                    {t:'x', h, ts}                          it threw (poison)
 */
export class LedgerWriter {
  private fd: number;

  constructor(dir: string, name: string) {
    mkdirSync(dir, { recursive: true });
    this.fd = openSync(join(dir, `${name}-${process.pid}.jsonl`), 'a');
  }

  write(record: Record<string, unknown>): void {
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
  }

  close(): void {
    closeSync(this.fd);
  }
}

export interface LedgerRecord {
  t: string;
  [field: string]: unknown;
  /** File the record came from (added by the reader). */
  file: string;
}

export function readLedgers(dir: string): { records: LedgerRecord[]; torn: number } {
  const records: LedgerRecord[] = [];
  let torn = 0;
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  } catch {
    // no ledger directory: nothing was recorded
  }
  for (const file of files.sort()) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!line) continue;
      try {
        records.push({ ...(JSON.parse(line) as { t: string }), file });
      } catch {
        torn++; // a line cut by SIGKILL in the middle of write(2)
      }
    }
  }
  return { records, torn };
}
