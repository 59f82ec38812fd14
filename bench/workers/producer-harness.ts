import { WindowProfiler } from '../cpu-profiler.js';
import {
  GcMeter,
  errorText,
  exitWithParent,
  makePad,
  nextParentMessage,
  parseParams,
  wallNow,
  type ProducerParams,
  type ProducerResult,
} from '../protocol.js';

/** What a producer implementation (raw XADD or library emit) provides. */
export interface ProducerDriver {
  /** Sends message `seq`; resolves when Redis stored it. */
  sendOne(seq: number, pad: string): Promise<unknown>;
  close(): Promise<void>;
}

const WORKER_MAX_MS = 10 * 60_000;
/** Pacing tick: at 1,000 msg/s this sends 10 messages every 10 ms. */
const TICK_MS = 10;

/** init -> 'initialized' -> wait 'start' -> send `count` messages -> 'produced' -> exit. */
export async function runProducerWorker(init: (params: ProducerParams) => Promise<ProducerDriver>): Promise<void> {
  exitWithParent();
  setTimeout(() => process.exit(3), WORKER_MAX_MS).unref();
  const params = parseParams<ProducerParams>();
  try {
    const driver = await init(params);
    process.send?.({ type: 'initialized' });
    await nextParentMessage('start');
    const profiler = params.cpuProfilePath ? new WindowProfiler() : undefined;
    await profiler?.start();
    const result = await produce(params, driver);
    if (params.cpuProfilePath) await profiler?.stop(params.cpuProfilePath);
    await driver.close();
    process.send?.({ type: 'produced', result }, () => process.exit(0));
  } catch (error) {
    process.send?.({ type: 'error', message: errorText(error) }, () => process.exit(1));
  }
}

async function produce(params: ProducerParams, driver: ProducerDriver): Promise<ProducerResult> {
  const pad = makePad(params.payloadBytes);
  let sent = 0;
  let failed = 0;
  let firstError: string | undefined;
  const one = async (seq: number) => {
    try {
      await driver.sendOne(seq, pad);
      sent++;
    } catch (error) {
      failed++;
      firstError ??= errorText(error);
    }
  };
  const gc = new GcMeter();
  gc.start();
  const firstSendAt = wallNow();
  if (params.ratePerSecond <= 0) {
    // As fast as possible with `concurrency` sends in flight: each lane sends the next sequence number when its
    // previous send completed.
    let next = 0;
    const lane = async () => {
      while (next < params.count) await one(next++);
    };
    await Promise.all(Array.from({ length: Math.min(params.concurrency, params.count) }, lane));
  } else {
    await paced(params, one, firstSendAt);
  }
  const lastDoneAt = wallNow();
  return { sent, failed, firstSendAt, lastDoneAt, firstError, gc: gc.stop() };
}

/** Sends at a fixed rate: every tick, whatever is due by now (catches up after a late timer). */
function paced(params: ProducerParams, one: (seq: number) => Promise<void>, startAt: number): Promise<void> {
  return new Promise((resolve) => {
    let next = 0;
    let inFlight = 0;
    const maybeDone = () => {
      if (next >= params.count && inFlight === 0) resolve();
    };
    const tick = () => {
      const due = Math.min(params.count, Math.floor(((wallNow() - startAt) * params.ratePerSecond) / 1_000) + 1);
      while (next < due && inFlight < params.concurrency) {
        inFlight++;
        void one(next++).finally(() => {
          inFlight--;
          maybeDone();
        });
      }
      if (next < params.count) setTimeout(tick, TICK_MS);
      else maybeDone();
    };
    tick();
  });
}
