/**
 * Shared by the scale scripts (bench/scale/*.ts): settings from the environment, a throw-away Redis, INFO
 * sampling, CPU sampling, key cleanup and table printing. No Nest and no library import here.
 */
import type { LoggerService } from '@nestjs/common';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { ThrowawayRedis } from '../../apps/demo/src/redis-server.process.js';

export function envInt(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min} (got "${raw}")`);
  return value;
}

/** A comma-separated list of integers, e.g. SCALE_TOPICS=1000,10000,100000. */
export function envIntList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (!raw) return fallback;
  return raw.split(',').map((item) => {
    const value = Number(item.trim().replace(/_/g, ''));
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name}: "${item}" is not a positive integer`);
    return value;
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const MB = 1024 * 1024;

/** A key prefix no other run shares. */
export function runPrefix(scenario: string): string {
  return `scale:${randomBytes(3).toString('hex')}:${scenario}`;
}

/** The library's `connection` options for a measured Redis: one server by URL, or a Cluster by its seed nodes. */
export type LibraryConnection = { url: string } | { cluster: { nodes: { host: string; port: number }[] } };

/**
 * What a scenario that runs on one server or on a Cluster samples (BenchRedis here, BenchCluster in cluster.ts).
 * On a Cluster every figure is the sum over the masters.
 */
export interface MeasuredRedis {
  readonly connection: LibraryConnection;
  counters(): Promise<RedisCounters>;
  commandCalls(): Promise<Map<string, number>>;
  usedMemory(): Promise<number>;
  /** GET of each key (any slots); null for a missing key. */
  getMany(keys: string[]): Promise<(string | null)[]>;
  deletePrefix(prefix: string): Promise<number>;
}

/** The Redis a scale script measures: SCALE_REDIS_URL, or a throw-away redis-server of its own (no persistence). */
export class BenchRedis implements MeasuredRedis {
  private constructor(
    readonly url: string,
    readonly admin: Redis,
    private readonly own?: ThrowawayRedis,
  ) {}

  static async start(): Promise<BenchRedis> {
    const given = process.env.SCALE_REDIS_URL;
    const own = given ? undefined : await ThrowawayRedis.start();
    const url = given ?? own!.url;
    const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await admin.connect();
    return new BenchRedis(url, admin, own);
  }

  get isOwn(): boolean {
    return this.own !== undefined;
  }

  get connection(): LibraryConnection {
    return { url: this.url };
  }

  getMany(keys: string[]): Promise<(string | null)[]> {
    return keys.length === 0 ? Promise.resolve([]) : this.admin.mget(keys);
  }

  async info(section: string): Promise<Record<string, string>> {
    const text = await this.admin.info(section);
    const fields: Record<string, string> = {};
    for (const line of text.split('\r\n')) {
      const at = line.indexOf(':');
      if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1);
    }
    return fields;
  }

  async usedMemory(): Promise<number> {
    return Number((await this.info('memory')).used_memory);
  }

  /** Counters for a rate over a window: commands processed, network bytes in/out, Redis CPU seconds. */
  async counters(): Promise<RedisCounters> {
    const [stats, cpu] = await Promise.all([this.info('stats'), this.info('cpu')]);
    return {
      at: Date.now(),
      commands: Number(stats.total_commands_processed),
      netInputBytes: Number(stats.total_net_input_bytes),
      netOutputBytes: Number(stats.total_net_output_bytes),
      cpuSeconds: Number(cpu.used_cpu_user) + Number(cpu.used_cpu_sys),
    };
  }

  /** Calls per command so far (INFO commandstats), e.g. { evalsha: 1200, xreadgroup: 3 }. */
  async commandCalls(): Promise<Map<string, number>> {
    const calls = new Map<string, number>();
    for (const [key, value] of Object.entries(await this.info('commandstats'))) {
      const n = /calls=(\d+)/.exec(value)?.[1];
      if (key.startsWith('cmdstat_') && n) calls.set(key.slice('cmdstat_'.length), Number(n));
    }
    return calls;
  }

  async version(): Promise<string> {
    return (await this.info('server')).redis_version ?? 'unknown';
  }

  /** SCAN + UNLINK of every key under a prefix (never FLUSHALL: SCALE_REDIS_URL may be someone's Redis). */
  async deletePrefix(prefix: string): Promise<number> {
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await this.admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5_000);
      cursor = next;
      if (keys.length > 0) deleted += await this.admin.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  }

  async stop(): Promise<void> {
    this.admin.disconnect();
    await this.own?.stop();
  }
}

export interface RedisCounters {
  readonly at: number;
  readonly commands: number;
  readonly netInputBytes: number;
  readonly netOutputBytes: number;
  readonly cpuSeconds: number;
}

/** Rates between two counter samples: commands/s, KB/s in, Redis CPU as % of one core. */
export function rates(from: RedisCounters, to: RedisCounters): { commandsPerSecond: number; inputKBps: number; redisCpuPercent: number } {
  const seconds = Math.max(0.001, (to.at - from.at) / 1_000);
  return {
    commandsPerSecond: (to.commands - from.commands) / seconds,
    inputKBps: (to.netInputBytes - from.netInputBytes) / 1024 / seconds,
    redisCpuPercent: ((to.cpuSeconds - from.cpuSeconds) / seconds) * 100,
  };
}

/** The busiest commands between two commandstats samples, as "name n/s" (top `count`). */
export function topCommands(from: Map<string, number>, to: Map<string, number>, seconds: number, count = 3): string {
  return [...to]
    .map(([name, calls]) => [name, (calls - (from.get(name) ?? 0)) / seconds] as const)
    .filter(([, rate]) => rate > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, rate]) => `${name} ${fmt(rate)}/s`)
    .join(', ');
}

/** CPU of this process over a window, as % of one core. */
export class CpuWindow {
  private readonly startedAt = process.hrtime.bigint();
  private readonly start = process.cpuUsage();

  percent(): number {
    const used = process.cpuUsage(this.start);
    const elapsedMicros = Number(process.hrtime.bigint() - this.startedAt) / 1_000;
    return ((used.user + used.system) / Math.max(1, elapsedMicros)) * 100;
  }
}

/** Samples this process's RSS every `everyMs` and keeps the peak (for payload-size measurements). */
export class RssPeak {
  peak = process.memoryUsage.rss();
  private readonly timer: NodeJS.Timeout;

  constructor(everyMs = 10) {
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, process.memoryUsage.rss());
    }, everyMs);
    this.timer.unref();
  }

  stop(): number {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
    return this.peak;
  }
}

export function fmt(value: number | undefined | null, digits = 0): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** The q-quantile (0..1) of values sorted ascending (nearest rank); NaN when empty. */
export function percentile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] : NaN;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A plain-text table (first column left-aligned, the others right-aligned). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

/** What one scenario reports: its table (printed) and its raw figures (written to the results file). */
export interface ScenarioReport {
  readonly name: string;
  readonly table: string;
  readonly notes: string[];
  readonly figures: unknown;
}

let latestWarning: string | undefined;

/** The last warning or error the library logged (the scale scripts report it when a step fails). */
export function lastWarning(): string | undefined {
  return latestWarning;
}

/**
 * Nest logger for the scale scripts: the library logs every created group and started server at `log`, which
 * thousands of streams or servers would turn into noise. Keeps errors and warnings, printing each text once.
 */
export class QuietLogger implements LoggerService {
  private readonly seen = new Set<string>();

  log(): void {}
  debug(): void {}
  verbose(): void {}

  warn(message: unknown): void {
    this.keep('WARN', message);
  }

  error(message: unknown): void {
    this.keep('ERROR', message);
  }

  private keep(level: string, message: unknown): void {
    const text = String(message);
    latestWarning = text;
    if (this.seen.has(text)) return;
    this.seen.add(text);
    process.stderr.write(`  [library ${level}] ${text.slice(0, 300)}\n`);
  }
}
