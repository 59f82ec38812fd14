import { WindowProfiler } from '../cpu-profiler.js';
import {
  DeliveryCounter,
  GcMeter,
  MemorySampler,
  errorText,
  exitWithParent,
  nextParentMessage,
  parseParams,
  send,
  sleep,
  wallNow,
  type ConsumerParams,
  type ConsumerResult,
  type GcStats,
} from '../protocol.js';

/** What a consumer implementation (raw loop or library) provides to the common lifecycle. */
export interface ConsumerDriver {
  /** Starts reading; resolves once reading runs. May return the stream keys it reads, for a sanity check. */
  start(): Promise<string[] | undefined>;
  /** Entries whose XACK Redis has answered so far. */
  ackedCount(): number;
  /** Stops reading, flushes acks, closes connections. */
  stop(): Promise<void>;
}

const PROGRESS_EVERY_MS = 250;
/** Upper bound of one worker's life, whatever the parent does. */
const WORKER_MAX_MS = 10 * 60_000;

/**
 * The lifecycle every consumer worker follows, so raw and library are timed the same way:
 *   init -> 'initialized' -> wait 'start' -> startAt, start reading -> 'listening'
 *   -> every expected message handled and acknowledged -> 'complete'
 *   -> wait 'stop' -> stop -> 'result' -> exit.
 */
export async function runConsumerWorker(
  init: (params: ConsumerParams, counter: DeliveryCounter) => Promise<ConsumerDriver>,
): Promise<void> {
  exitWithParent();
  setTimeout(() => process.exit(3), WORKER_MAX_MS).unref();
  const params = parseParams<ConsumerParams>();
  const counter = new DeliveryCounter(params.expected, params.scenario === 'latency', params.latencyWarmup);
  try {
    const driver = await init(params, counter);
    const stopRequested = nextParentMessage('stop');
    process.on('message', (message: { type?: string; count?: number }) => {
      if (message?.type === 'expect' && typeof message.count === 'number') counter.expect(message.count);
    });
    const memory = new MemorySampler();
    send({ type: 'initialized' });
    await nextParentMessage('start');

    const profiler = params.cpuProfilePath ? new WindowProfiler() : undefined;
    await profiler?.start();
    const gc = new GcMeter();
    gc.start();
    memory.start(params.memorySampleMs);
    const startAt = wallNow();
    const streams = await driver.start();
    // Steadier than msg/s on a shared machine: what the consumer process itself spent, start-up excluded.
    const cpuAtStart = process.cpuUsage();
    send({ type: 'listening', streams });
    const progress = setInterval(() => send({ type: 'progress', unique: counter.unique }), PROGRESS_EVERY_MS);

    let stopping = false;
    let completeAt = Number.NaN;
    let gcStats: GcStats | undefined;
    let cpuMs = Number.NaN;
    const watch = (async () => {
      // Coarse polling until everything is handled, then 1 ms polling for the acks (the end of the measurement).
      while (!stopping && !counter.isComplete) await sleep(5);
      while (!stopping && driver.ackedCount() < counter.unique) await sleep(1);
      if (stopping) return;
      completeAt = wallNow();
      const cpu = process.cpuUsage(cpuAtStart);
      cpuMs = (cpu.user + cpu.system) / 1_000;
      gcStats = gc.stop();
      send({ type: 'complete', completeAt });
    })().finally(() => (params.cpuProfilePath ? profiler?.stop(params.cpuProfilePath) : undefined));

    await stopRequested;
    stopping = true;
    clearInterval(progress);
    await watch;
    await driver.stop();
    const result: ConsumerResult = {
      received: counter.received,
      unique: counter.unique,
      duplicates: counter.duplicates,
      startAt,
      firstHandledAt: counter.firstHandledAt,
      completeAt,
      latencyMs: counter.latency(),
      memory: memory.stop(),
      gc: gcStats ?? gc.stop(),
      cpuMs,
    };
    process.send?.({ type: 'result', result }, () => process.exit(0));
  } catch (error) {
    process.send?.({ type: 'error', message: errorText(error) }, () => process.exit(1));
  }
}
