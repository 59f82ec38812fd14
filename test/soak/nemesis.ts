import { Prng } from './prng.js';
import type { RedisFault, TopologyName } from './topology.js';
import { MAX_PARTITIONS, type Feature } from './workload.js';

export type FaultKind =
  | 'kill' // SIGKILL a process; restarted after `ms`
  | 'stop' // SIGSTOP, SIGCONT after `ms`
  | 'term' // SIGTERM (graceful shutdown must exit 0); restarted after `ms`
  | 'proxy-drop' // reset every client connection (TCP RST)
  | 'proxy-stall' // black-hole the link for `ms`
  | 'proxy-slow' // delay every chunk 20..150 ms for `ms`
  | 'proxy-halfopen' // open connections go silent for good (the far end forgot them)
  | RedisFault
  | 'scale' // PartitioningManager.scalePartitions(soak.keyed, arg)
  | 'redrive' // DeadLetterManager.redrive(soak.plain)
  | 'replay'; // ReplayManager.replayMessages(soak.plain -> soak.plain.replayed), the last `ms` of history

export interface Fault {
  /** Milliseconds after the workload started. */
  readonly at: number;
  readonly kind: FaultKind;
  /** Process name, for process faults. */
  readonly target?: string;
  /** Duration (down time, pause, stall) in ms. */
  readonly ms: number;
  /** Extra argument (partition count for `scale`, a pick for Redis faults). */
  readonly arg?: number;
}

export interface ScheduleInput {
  readonly seed: number;
  readonly durationMs: number;
  readonly topology: TopologyName;
  readonly features: ReadonlySet<Feature>;
  readonly processes: readonly string[];
  readonly redisFaults: readonly RedisFault[];
  /** Mean gap between fault starts. */
  readonly meanGapMs: number;
}

/**
 * The whole fault schedule, drawn up front from the seed: the same seed, duration, topology, features and process
 * list give the same schedule. Faults start at Poisson-process times and last long enough to overlap each other.
 * The first 3 s (start-up) and the last 2 s before healing are left alone.
 */
export function schedule(input: ScheduleInput): Fault[] {
  const prng = new Prng(input.seed);
  const { features } = input;
  const kinds: [FaultKind, number][] = [
    ['kill', 14],
    ['stop', 8],
    ['term', 6],
  ];
  if (input.topology !== 'cluster') kinds.push(['proxy-drop', 5], ['proxy-stall', 5], ['proxy-slow', 4], ['proxy-halfopen', 3]);
  for (const f of input.redisFaults) kinds.push([f, f === 'redis-kill' || f === 'failover' || f === 'cluster-kill-primary' ? 6 : 3]);
  if (features.has('keyed') && features.has('scale')) kinds.push(['scale', 4]);
  if (features.has('poison') && features.has('redrive')) kinds.push(['redrive', 4]);
  if (features.has('plain') && features.has('replay')) kinds.push(['replay', 3]);
  const faults: Fault[] = [];
  let at = 3_000;
  for (;;) {
    at += Math.round(prng.exponential(input.meanGapMs));
    if (at > input.durationMs - 2_000) break;
    const kind = prng.weighted(kinds);
    switch (kind) {
      case 'kill':
      case 'term':
        faults.push({ at, kind, target: prng.pick(input.processes), ms: prng.int(200, 3_000) });
        break;
      case 'stop':
        faults.push({ at, kind, target: prng.pick(input.processes), ms: prng.int(300, 6_000) });
        break;
      case 'proxy-stall':
        faults.push({ at, kind, ms: prng.int(300, 4_000) });
        break;
      case 'proxy-slow':
        faults.push({ at, kind, ms: prng.int(1_000, 6_000) });
        break;
      case 'scale':
        faults.push({ at, kind, ms: 0, arg: prng.int(1, MAX_PARTITIONS) });
        break;
      case 'replay':
        faults.push({ at, kind, ms: prng.int(2_000, 20_000) });
        break;
      default:
        faults.push({ at, kind, ms: prng.int(200, 2_500), arg: prng.int(0, 1_000) });
    }
  }
  return faults;
}

export function describeFault(f: Fault): string {
  const t = `+${(f.at / 1000).toFixed(1)}s`.padStart(8);
  switch (f.kind) {
    case 'kill':
      return `${t} SIGKILL ${f.target}, restart after ${f.ms} ms`;
    case 'stop':
      return `${t} SIGSTOP ${f.target} for ${f.ms} ms`;
    case 'term':
      return `${t} SIGTERM ${f.target}, restart after ${f.ms} ms`;
    case 'proxy-drop':
      return `${t} proxy: reset every connection`;
    case 'proxy-stall':
      return `${t} proxy: stall ${f.ms} ms`;
    case 'proxy-slow':
      return `${t} proxy: slow (20-150 ms per chunk) for ${f.ms} ms`;
    case 'proxy-halfopen':
      return `${t} proxy: open connections half-open`;
    case 'scale':
      return `${t} scalePartitions(soak.keyed, ${f.arg})`;
    case 'redrive':
      return `${t} DeadLetterManager.redrive(soak.plain)`;
    case 'replay':
      return `${t} ReplayManager: soak.plain (last ${f.ms} ms) -> soak.plain.replayed`;
    default:
      return `${t} ${f.kind} (down ${f.ms} ms, pick ${f.arg})`;
  }
}
