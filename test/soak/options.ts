import { parseArgs } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TopologyName } from './topology.js';
import { ALL_FEATURES, type Feature } from './workload.js';

export interface SoakOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly topology: TopologyName;
  readonly features: ReadonlySet<Feature>;
  readonly out: string;
  /** Messages per second per producer loop (plain topic; the others are derived). */
  readonly rate: number;
  readonly consumersPerKind: number;
  readonly producers: number;
  readonly meanGapMs: number;
  readonly drainTimeoutMs: number;
  readonly maxHeapMb: number;
  readonly maxDuplicateRatio: number;
  readonly poisonRate: number;
  readonly handlerMs: number;
  readonly keep: boolean;
}

const USAGE = `usage: npm run test:soak -- [--seed <n>] [--duration <time>] [--topology single|replicated|cluster]
       [--features ${ALL_FEATURES.join(',')}] [--rate <msg/s>] [--consumers <per kind>] [--producers <n>]
       [--mean-gap <time>] [--drain-timeout <time>] [--poison-rate <0..1>] [--max-heap-mb <n>]
       [--max-dup-ratio <0..1>] [--handler-ms <n>] [--out <dir>] [--keep]
time: 90s, 5m, 1h30m, 2500ms, or a bare number of seconds`;

/** `90s`, `5m`, `1h30m`, `2500ms` or a bare number of seconds (`--duration 90` is a minute and a half, not 90 ms). */
export function parseDuration(text: string): number {
  if (/^\d+$/.test(text) && Number(text) > 0) return Number(text) * 1_000;
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    consumed += m[0].length;
  }
  if (consumed !== text.length || total <= 0) throw new Error(`not a duration: "${text}"\n${USAGE}`);
  return total;
}

export function parseOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: 'string' },
      duration: { type: 'string', default: '3m' },
      topology: { type: 'string', default: 'single' },
      features: { type: 'string', default: ALL_FEATURES.join(',') },
      out: { type: 'string' },
      rate: { type: 'string', default: '20' },
      consumers: { type: 'string', default: '2' },
      producers: { type: 'string', default: '1' },
      'mean-gap': { type: 'string', default: '4s' },
      'drain-timeout': { type: 'string', default: '2m' },
      'max-heap-mb': { type: 'string', default: '256' },
      'max-dup-ratio': { type: 'string', default: '0.1' },
      'poison-rate': { type: 'string', default: '0.02' },
      'handler-ms': { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const seed = values.seed === undefined ? Math.floor(Math.random() * 1_000_000) : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer\n${USAGE}`);
  const topology = values.topology as TopologyName;
  if (!['single', 'replicated', 'cluster'].includes(topology)) throw new Error(`--topology must be single, replicated or cluster\n${USAGE}`);
  const features = new Set(values.features.split(',').filter(Boolean) as Feature[]);
  for (const f of features) if (!ALL_FEATURES.includes(f)) throw new Error(`unknown feature "${f}"\n${USAGE}`);
  return {
    seed,
    durationMs: parseDuration(values.duration),
    topology,
    features,
    out: values.out ?? join(tmpdir(), `rse-soak-${seed}-${Date.now()}`),
    rate: Number(values.rate),
    consumersPerKind: Number(values.consumers),
    producers: Number(values.producers),
    meanGapMs: parseDuration(values['mean-gap']),
    drainTimeoutMs: parseDuration(values['drain-timeout']),
    maxHeapMb: Number(values['max-heap-mb']),
    maxDuplicateRatio: Number(values['max-dup-ratio']),
    poisonRate: Number(values['poison-rate']),
    handlerMs: Number(values['handler-ms']),
    keep: values.keep,
  };
}
