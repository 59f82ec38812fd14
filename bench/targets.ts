/**
 * The last table of `npm run bench`: every performance target of the library (issue 16) next to what this run
 * measured, with the verdict and, where a throughput target is missed, the resource that bounds it as far as this run
 * shows (the producer when the library producer alone was no faster than the whole pipeline, else the consumer).
 */
import type { AllFeaturesFigures } from './all-features.js';
import type { OrderingFigures } from './ordering.js';
import type { PeersFigures } from './peers-report.js';
import type { PerPartitionFigures } from './per-partition.js';
import type { ReplayFigures } from './replay.js';
import type { MemoryPeaks } from './protocol.js';
import { fmt, table } from './report-utils.js';

/** A row of bench/run.ts's main table (library vs raw). */
export interface MainFigure {
  readonly name: string;
  readonly raw: number;
  readonly library: number;
  readonly ratio: number;
}

export interface DrainMemory {
  readonly messages: number;
  readonly library?: MemoryPeaks;
}

export interface TargetsInput {
  readonly scenarios: readonly MainFigure[];
  readonly drainMemory?: DrainMemory;
  readonly replay?: ReplayFigures;
  readonly ordering?: OrderingFigures;
  readonly allFeatures?: AllFeaturesFigures;
  readonly perPartition?: PerPartitionFigures;
  readonly peers?: PeersFigures;
}

export interface TargetRow {
  readonly target: string;
  readonly measured: string;
  readonly required: string;
  /** 'ok', 'MISSED' or 'n/a' (not measured in this run). */
  readonly verdict: string;
  readonly bound: string;
}

/** A library pipeline whose producer alone was no more than 15% faster is bounded by its producer. */
function boundOf(endToEnd: number, producerAlone: number | undefined): string {
  if (producerAlone === undefined || !Number.isFinite(producerAlone)) return '';
  return producerAlone <= endToEnd * 1.15 ? `producer (alone ${fmt(producerAlone)} msg/s)` : `consumer (producer alone ${fmt(producerAlone)} msg/s)`;
}

function check(value: number | undefined, op: '>=' | '<=', limit: number): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return (op === '>=' ? value >= limit : value <= limit) ? 'ok' : 'MISSED';
}

export function targetRows(input: TargetsInput): TargetRow[] {
  const rows: TargetRow[] = [];
  const add = (target: string, value: number | undefined, digits: number, op: '>=' | '<=', limit: number, bound = '', unit = '') =>
    rows.push({ target, measured: `${fmt(value, digits)}${unit}`, required: `${op} ${fmt(limit, digits > 0 ? digits : 0)}${unit}`, verdict: check(value, op, limit), bound });
  const main = (prefix: string) => input.scenarios.find((f) => f.name.startsWith(prefix));
  const mainRatio = (target: string, prefix: string, producerPrefix?: string, bound?: string) => {
    const f = main(prefix);
    const producer = producerPrefix ? main(producerPrefix) : undefined;
    const why = f && f.ratio < 0.85 ? (bound ?? boundOf(f.library, producer?.library)) : '';
    add(target, f?.ratio, 2, '>=', 0.85, why, ' x raw');
  };
  mainRatio('live, 256 emits in flight (library defaults)', 'live throughput', '  producer alone during live');
  mainRatio('live, every emit fired without awaiting', 'live, every emit', '  producer alone during that');
  mainRatio('drain of a backlog', 'drain throughput', undefined, 'consumer CPU (no producer runs)');
  for (const p of input.peers?.rows.filter((r) => r.metric.startsWith('latency p99')) ?? []) {
    add(`${p.metric} (side by side)`, p.ratios.library?.median, 2, '<=', 2, '', ' x raw');
  }
  const latency = main('latency p99');
  if (latency) add(`${latency.name} (main run)`, latency.ratio, 2, '<=', 2, '', ' x raw');
  const drain = input.drainMemory;
  const rss = drain?.library?.peakRssMb;
  rows.push({
    target: `consumer peak RSS draining ${fmt(drain?.messages)} entries (target counted at 1,000,000)`,
    measured: `${fmt(rss, 0)} MB`,
    required: '<= 200 MB',
    verdict: drain && drain.messages >= 1_000_000 ? check(rss, '<=', 200) : 'n/a (BENCH_DRAIN_MESSAGES=1000000)',
    bound: '',
  });
  const global = input.ordering?.scenarios.find((s) => s.name.startsWith('global ordering ('));
  add('global ordering', global?.ratio, 2, '>=', 0.5, global && global.ratio < 0.5 ? boundOf(global.library, global.libraryProducer) : '', ' x raw');
  const one = input.perPartition?.rows.find((r) => r.partitions === 1);
  const oneOutcome = (set: string) => input.perPartition?.outcomes[`${set}-p1`]?.[0];
  for (const [set, label] of [['baseline', 'baseline'], ['ordering', 'with per-key ordering'], ['schema', 'with schema validation'], ['all', 'with all features']] as const) {
    const l = one?.library[set];
    const o = oneOutcome(set);
    add(`one partition, one consumer process, ${label}: 2x the seed`, l?.perPartition, 0, '>=', 2 * (l?.seedPerPartition ?? Number.NaN), l && !l.twiceSeed ? boundOf(l.total, o?.producerMsgPerSec) : '', ' msg/s');
  }
  const allOne = one?.library.all;
  add('all features at once, one partition', allOne?.perPartition, 0, '>=', 3_000, '', ' msg/s');
  const af = input.allFeatures;
  add('publish p99, plain (seed < 1 ms, 2x)', af?.publishLatencyMs.plain.p99, 2, '<=', 0.5, '', ' ms');
  add('publish p99, all features (seed < 5 ms, 2x)', af?.publishLatencyMs.all.p99, 2, '<=', 2.5, '', ' ms');
  add('consume p99, plain (seed < 10 ms, 2x)', af?.consumeLatencyMs.plain?.p99, 2, '<=', 5, '', ' ms');
  add('consume p99, all features (seed < 50 ms, 2x)', af?.consumeLatencyMs.all?.p99, 2, '<=', 25, '', ' ms');
  add('replay per 1,000 messages (seed < 100 ms, 2x)', input.replay?.libraryMsPer1000, 1, '<=', 50, '', ' ms');
  return rows;
}

/** Prints the table and returns its rows (for bench/results/latest.json). */
export function printTargets(input: TargetsInput): TargetRow[] {
  const rows = targetRows(input);
  console.log('');
  console.log('targets (issue 16), every figure from this run; ratios are medians of the interleaved runs:');
  console.log(table(['target', 'measured', 'required', 'verdict', 'bound where missed'], rows.map((r) => [r.target, r.measured, r.required, r.verdict, r.bound]), 1));
  return rows;
}
