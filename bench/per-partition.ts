/**
 * The seed's figures per partition, measured the way the seed means them, with the library's default settings:
 * P partitions (hash by `key`), each served by its own consumer process (P consumers), for P = 1, 2, 4, 8 (the
 * scaling curve on this machine). Per P, in rotated order: the raw ioredis loop (P streams, each read by one
 * process), and the library with
 *   baseline   partitioning only (handlers of a partition run side by side),
 *   ordering   per-key order (ordering.strategy 'partition' by `key`),
 *   schema     partitioning + strict schema validation at emit and at consume,
 *   all        per-key order + exactly-once with an idempotency key per message + strict schema + retries/dead letters.
 * The producer is one process (256 sends in flight), as in the ordering scenarios; batchSize, concurrency and
 * ordering.maxConcurrency stay at the library's defaults (the raw consumer reads the same batch size).
 * Seed per partition: baseline 10,000+, ordering 5,000+, schema 3,000+, all 1,000+; the target is 2x each.
 */
import { Redis } from 'ioredis';
import { fileURLToPath } from 'node:url';
import { ConsumerOptions } from 'nestjs-redis-streams-enterprise';
import { describe, failedOutcome, orderingSettings, runStandalone, runVariant, type OrderingBaseSettings, type OrderingOutcome, type Variant } from './ordering.js';
import { envInt, fmt, median, table } from './report-utils.js';
import type { FeatureSet } from './workers/ordering-common.js';

const SETS = [
  { id: 'baseline', features: 'partitioned', seed: 10_000, ordered: false },
  { id: 'ordering', features: 'ordering', seed: 5_000, ordered: true },
  { id: 'schema', features: 'schema', seed: 3_000, ordered: false },
  { id: 'all', features: 'all', seed: 1_000, ordered: true },
] as const satisfies readonly { id: string; features: FeatureSet; seed: number; ordered: boolean }[];

type SetId = (typeof SETS)[number]['id'];

function settings() {
  const counts = (process.env.BENCH_PER_PARTITION_COUNTS ?? '1,2,4,8').split(',').map((n) => Number(n.trim()));
  if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) throw new Error(`BENCH_PER_PARTITION_COUNTS must list integers 1-64 (got "${process.env.BENCH_PER_PARTITION_COUNTS}")`);
  return {
    counts,
    /** Messages per run (0 skips the measurement). */
    messages: envInt('BENCH_PER_PARTITION_MESSAGES', 10_000, 0),
    runs: envInt('BENCH_PER_PARTITION_RUNS', 1, 1),
  };
}

export interface PerPartitionRow {
  readonly partitions: number;
  /** Median msg/s over the runs, total (all partitions). */
  readonly raw: number;
  readonly library: Record<SetId, { readonly total: number; readonly perPartition: number; readonly ratioToRaw: number; readonly seedPerPartition: number; readonly twiceSeed: boolean }>;
}

export interface PerPartitionFigures {
  readonly messages: number;
  readonly runs: number;
  readonly settings: { readonly batchSize: number; readonly concurrency: number; readonly maxConcurrency: string };
  readonly rows: readonly PerPartitionRow[];
  readonly outcomes: Record<string, OrderingOutcome[]>;
  readonly ok: boolean;
}

export async function runPerPartitionBench(url: string, base: OrderingBaseSettings): Promise<PerPartitionFigures | undefined> {
  const p = settings();
  if (p.messages === 0) return undefined;
  const defaults = new ConsumerOptions();
  // The raw loop reads the library's default batch size; the library consumers are left at their defaults.
  const b: OrderingBaseSettings = { ...base, batchSize: defaults.batchSize, concurrency: defaults.concurrency };
  const s = { ...orderingSettings(), maxConcurrency: 0 }; // 0: ordering.maxConcurrency left at its default
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  const outcomes: Record<string, OrderingOutcome[]> = {};
  let ok = true;
  console.log('');
  console.log(
    `per partition (seed figures), one consumer process per partition, library defaults (batchSize ${defaults.batchSize}, ` +
      `concurrency ${defaults.concurrency}, ordering.maxConcurrency default), ${p.messages.toLocaleString('en-US')} msgs per run, ${s.keys} keys:`,
  );
  try {
    for (const partitions of p.counts) {
      const common = { strategy: 'partition' as const, consumers: partitions, partitions, messages: p.messages, libraryDefaults: true };
      const variants: (Variant & { set?: (typeof SETS)[number] })[] = [
        { id: `raw-p${partitions}`, mode: 'raw', ...common },
        ...SETS.map((set) => ({ id: `${set.id}-p${partitions}`, mode: 'library' as const, features: set.features, set, ...common })),
      ];
      for (let r = 0; r < p.runs; r++) {
        // Rotated each round, so no variant always runs first (or right after the heaviest one).
        const order = variants.map((_, i) => variants[(i + r) % variants.length]);
        for (const v of order) {
          let outcome: OrderingOutcome;
          try {
            outcome = await runVariant(url, admin, b, s, v, `pp-${v.id}-${r + 1}`);
          } catch (error) {
            outcome = failedOutcome(error);
          }
          (outcomes[v.id] ??= []).push(outcome);
          // Order is promised (and checked) only where ordering is on.
          const ordered = v.mode === 'raw' || v.set?.ordered === true;
          if (outcome.error || outcome.lost > 0 || outcome.duplicates > 0 || (ordered && v.mode !== 'raw' && outcome.outOfOrder > 0)) ok = false;
          console.log(`  per-partition ${v.id.padEnd(13)} run ${r + 1}: ${describe(outcome)}`);
        }
      }
    }
  } finally {
    await admin.quit();
  }

  const rate = (id: string) => median((outcomes[id] ?? []).map((o) => o.msgPerSec));
  const rows: PerPartitionRow[] = p.counts.map((partitions) => {
    const raw = rate(`raw-p${partitions}`);
    const library = Object.fromEntries(
      SETS.map((set) => {
        const total = rate(`${set.id}-p${partitions}`);
        const perPartition = total / partitions;
        return [set.id, { total, perPartition, ratioToRaw: total / raw, seedPerPartition: set.seed, twiceSeed: perPartition >= 2 * set.seed }];
      }),
    ) as PerPartitionRow['library'];
    return { partitions, raw, library };
  });
  console.log('');
  console.log(
    table(
      ['partitions = consumer processes', 'raw msg/s', ...SETS.flatMap((set) => [`${set.id} msg/s`, 'per partition', 'x raw', `2x seed (${fmt(2 * set.seed)})`])],
      rows.map((row) => [
        String(row.partitions),
        fmt(row.raw),
        ...SETS.flatMap((set) => {
          const l = row.library[set.id];
          return [fmt(l.total), fmt(l.perPartition), fmt(l.ratioToRaw, 2), l.twiceSeed ? 'ok' : 'MISSED'];
        }),
      ]),
      1,
    ),
  );
  if (!ok) {
    console.error('bench: per-partition runs failed, lost, duplicated or reordered messages (see above)');
    process.exitCode = 1;
  }
  return {
    messages: p.messages,
    runs: p.runs,
    settings: { batchSize: defaults.batchSize, concurrency: defaults.concurrency, maxConcurrency: 'default' },
    rows,
    outcomes,
    ok,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) runStandalone('per-partition', runPerPartitionBench);
