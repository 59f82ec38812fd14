/**
 * The side-by-side table of bench/peers.ts: medians per implementation, and per-round ratios to raw (median and
 * min–max), loss and duplicates per scenario, consumer peak RSS. No Nest and no library import here.
 */
import type { OrderingBaseSettings } from './ordering.js';
import { fmt, median, table } from './report-utils.js';

export const PEER_MODES = ['raw', 'library', 'nest-redis', 'de-novo'] as const;
export type PeerMode = (typeof PEER_MODES)[number];

/**
 * live: as fast as the sends in flight allow, the consumer reading. latency: a fixed `rate` in msg/s. backlog: the
 * same messages sent while no consumer runs (its group exists: it ran before), then the consumer starts and drains.
 */
export interface PeerScenario {
  readonly name: string;
  readonly kind: 'live' | 'latency' | 'backlog';
  readonly rate: number;
}

export interface PeerRun {
  readonly sent: number;
  readonly failedSends: number;
  readonly firstSendError?: string;
  readonly unique: number;
  readonly duplicates: number;
  /** Sent and never handled (the consumer made no progress for BENCH_STALL_MS). */
  readonly lost: number;
  /** Live only, and only when every message arrived: sent / (last handled and acknowledged - first send). */
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
  readonly peakRssMb: number;
  readonly error?: string;
}

export interface Ratio {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly perRound: number[];
}

export interface PeerRow {
  readonly metric: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  readonly values: Partial<Record<PeerMode, number>>;
  /** value / raw's value of the same round and scenario. */
  readonly ratios: Partial<Record<PeerMode, Ratio>>;
}

export interface PeerIntegrity {
  readonly runs: number;
  readonly failedRuns: number;
  readonly sent: number;
  readonly failedSends: number;
  readonly receivedOnce: number;
  readonly lost: number;
  readonly duplicates: number;
}

export interface PeersFigures {
  readonly settings: { rounds: number; messages: number; rates: number[]; latencySeconds: number; latencyWarmup: number; modes: PeerMode[] };
  readonly base: OrderingBaseSettings;
  readonly versions: Record<string, string | undefined>;
  readonly definitions: Record<string, string>;
  readonly rows: PeerRow[];
  readonly integrity: Partial<Record<PeerMode, Record<string, PeerIntegrity>>>;
  readonly runs: Record<string, Partial<Record<PeerMode, PeerRun[]>>>;
  /** False when raw or the library lost a message, duplicated one, or a run of theirs failed. */
  readonly ok: boolean;
}

interface Input {
  settings: PeersFigures['settings'];
  base: OrderingBaseSettings;
  versions: Record<string, string | undefined>;
  scenarios: PeerScenario[];
  runs: PeersFigures['runs'];
}

function row(input: Input, metric: string, unit: string, scenario: string, pick: (r: PeerRun) => number, higherIsBetter: boolean): PeerRow {
  const byMode = input.runs[scenario] ?? {};
  const values: PeerRow['values'] = {};
  const ratios: PeerRow['ratios'] = {};
  const raw = byMode.raw ?? [];
  for (const mode of input.settings.modes) {
    const list = byMode[mode] ?? [];
    values[mode] = median(list.map((r) => (r.error ? Number.NaN : pick(r))));
    const perRound = list.map((r, i) => (r.error || !raw[i] || raw[i].error ? Number.NaN : pick(r) / pick(raw[i])));
    const finite = perRound.filter(Number.isFinite);
    ratios[mode] = {
      median: median(finite),
      min: finite.length ? Math.min(...finite) : Number.NaN,
      max: finite.length ? Math.max(...finite) : Number.NaN,
      perRound,
    };
  }
  return { metric, unit, higherIsBetter, values, ratios };
}

export function peersReport(input: Input): PeersFigures {
  const { settings, scenarios } = input;
  const rows: PeerRow[] = [
    row(input, `live throughput, ${settings.messages.toLocaleString('en-US')} msgs, ${input.base.producerConcurrency} in flight`, 'msg/s', 'live', (r) => r.throughput, true),
  ];
  for (const s of scenarios.filter((x) => x.kind === 'latency')) {
    const at = `@ ${s.rate.toLocaleString('en-US')} msg/s`;
    rows.push(row(input, `latency p50 send -> handler ${at}`, 'ms', s.name, (r) => r.p50, false));
    rows.push(row(input, `latency p99 send -> handler ${at}`, 'ms', s.name, (r) => r.p99, false));
  }
  if (scenarios.some((x) => x.kind === 'backlog')) {
    const what = `backlog drain, ${settings.messages.toLocaleString('en-US')} msgs sent while the consumer was down`;
    rows.push(row(input, what, 'msg/s', 'backlog', (r) => r.throughput, true));
  }
  rows.push(row(input, 'consumer peak RSS during live', 'MB', 'live', (r) => r.peakRssMb, false));
  if (scenarios.some((x) => x.kind === 'backlog')) {
    // A consumer that received none of the backlog (pub/sub) drained nothing: its RSS is not a drain's.
    rows.push(row(input, 'consumer peak RSS during backlog drain', 'MB', 'backlog', (r) => (r.unique > 0 ? r.peakRssMb : Number.NaN), false));
  }

  const integrity: PeersFigures['integrity'] = {};
  let ok = true;
  for (const mode of settings.modes) {
    const perScenario: Record<string, PeerIntegrity> = {};
    for (const s of scenarios) {
      const list = input.runs[s.name]?.[mode] ?? [];
      const sum = (f: (r: PeerRun) => number) => list.reduce((n, r) => n + f(r), 0);
      const figures: PeerIntegrity = {
        runs: list.length,
        failedRuns: list.filter((r) => r.error).length,
        sent: sum((r) => r.sent),
        failedSends: sum((r) => r.failedSends),
        receivedOnce: sum((r) => r.unique),
        lost: sum((r) => r.lost),
        duplicates: sum((r) => r.duplicates),
      };
      perScenario[s.name] = figures;
      if ((mode === 'raw' || mode === 'library') && (figures.lost || figures.duplicates || figures.failedRuns)) ok = false;
    }
    integrity[mode] = perScenario;
  }
  return {
    settings,
    base: input.base,
    versions: input.versions,
    definitions: {
      'live throughput': 'messages sent / (last message handled, and acknowledged where the transport acknowledges, - first send); n/a when a message was lost',
      backlog:
        'messages sent while no consumer ran (the group existed), then messages / (last acknowledged - consumer starts reading); pub/sub delivers none of them (lost, throughput n/a)',
      latency: 'consumer handler time - producer send time (same machine clock) at a fixed rate; the first latencyWarmup messages dropped',
      ratio: 'implementation / raw of the same round, median and min-max over the rounds',
      lost: 'sent (Redis answered the XADD / PUBLISH) but never handled, after the consumer made no progress for stallMs',
      'nest-redis': "Nest's built-in Redis transport: PUBLISH / SUBSCRIBE, no storage, no acknowledgement",
      'de-novo': '@de-novo/nestjs-redis-streams: XADD / XREADGROUP / XACK per message, stream key = pattern',
    },
    rows,
    integrity,
    runs: input.runs,
    ok,
  };
}

function cell(value: number | undefined, unit: string): string {
  return fmt(value, unit === 'ms' ? 2 : unit === 'MB' ? 0 : 0);
}

function ratioCell(r: Ratio | undefined): string {
  if (!r || !Number.isFinite(r.median)) return 'n/a';
  return r.perRound.length > 1 ? `${fmt(r.median, 2)} (${fmt(r.min, 2)}-${fmt(r.max, 2)})` : fmt(r.median, 2);
}

export function printPeersTable(f: PeersFigures): void {
  const modes = f.settings.modes;
  const others = modes.filter((m) => m !== 'raw');
  const header = ['side by side', 'unit', ...(modes.includes('raw') ? ['raw'] : []), ...others.flatMap((m) => [m, 'x raw'])];
  const rows = f.rows.map((r) => [
    r.metric,
    r.unit,
    ...(modes.includes('raw') ? [cell(r.values.raw, r.unit)] : []),
    ...others.flatMap((m) => [cell(r.values[m], r.unit), ratioCell(r.ratios[m])]),
  ]);
  const scenarioNames = Object.keys(f.integrity[modes[0]] ?? {});
  const counts = (pick: (i: PeerIntegrity) => number) => (m: PeerMode) =>
    scenarioNames.map((s) => String(pick(f.integrity[m]![s]))).join(' / ');
  for (const [label, pick] of [
    ['lost', (i: PeerIntegrity) => i.lost],
    ['duplicated', (i: PeerIntegrity) => i.duplicates],
    ['failed sends / failed runs', (i: PeerIntegrity) => i.failedSends + i.failedRuns],
  ] as const) {
    const of = counts(pick);
    rows.push([`${label} (${scenarioNames.join(' / ')}, all rounds)`, 'count', ...(modes.includes('raw') ? [of('raw')] : []), ...others.flatMap((m) => [of(m), ''])]);
  }
  console.log('');
  console.log(table(header, rows, 2));
  console.log(
    `  x raw: median of the per-round ratios (min-max over ${f.settings.rounds} rounds); below 1 is slower for msg/s, ` +
      `above 1 is slower for ms and MB. Consumer RSS includes each implementation's own Nest / ioredis.`,
  );
  console.log('  backlog: pub/sub stores nothing for a consumer that is down, so those messages count as lost and its drain is n/a.');
  if (!f.ok) console.error('  side by side: raw or the library lost or duplicated messages, or a run failed');
}
