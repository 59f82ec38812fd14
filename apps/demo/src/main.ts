import 'reflect-metadata';
import { enterpriseFeaturesExample, RedisServerMissingError } from './enterprise-features.example.js';
import { REDIS_INSTALL_HINT } from './redis-server.process.js';
import { startConsoleDemo } from './console.app.js';

/**
 * `npm run demo`. Environment: REDIS_URL (default: a throw-away redis-server), DEMO_EVENTS (3000),
 * DEMO_REQUESTS (500), DEMO_CONCURRENCY (50), DEMO_VERBOSE=1 for the consumer's and Nest's logs, DEMO_TOUR=0 to skip
 * the tour of the enterprise features, DEMO_STAY_UP=1 to serve the operator console afterwards (its URL is printed;
 * Ctrl-C stops it and cleans up), on DEMO_CONSOLE_PORT (default: a free port).
 */
const positive = (value: string | undefined, fallback: number) => {
  const parsed = Number.parseInt(value ?? '', 10);
  return Number.isFinite(parsed) && parsed > 0 ? parsed : fallback;
};

const tour = process.env.DEMO_TOUR !== '0';
try {
  const result = await enterpriseFeaturesExample({
    events: positive(process.env.DEMO_EVENTS, 3_000),
    requests: positive(process.env.DEMO_REQUESTS, 500),
    concurrency: positive(process.env.DEMO_CONCURRENCY, 50),
    verbose: process.env.DEMO_VERBOSE === '1',
    tour,
    stayUp: process.env.DEMO_STAY_UP === '1',
  });
  console.log(result.summary);
  if (result.ok) {
    console.log(`\n  PASS: every event was delivered, every request answered${tour ? ' and every tour check held' : ''}.\n`);
  } else {
    console.log(`\n  FAIL:\n${result.failures.map((f) => `    - ${f}`).join('\n')}\n`);
  }
  process.exitCode = result.ok ? 0 : 1;
  if (result.keep) await stayUp(result.keep);
} catch (error) {
  if (error instanceof RedisServerMissingError) {
    console.error(`\n${REDIS_INSTALL_HINT}\n`);
  } else {
    console.error(`\nDemo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exitCode = 1;
}

/** Serves the console over the run's keys until Ctrl-C (or SIGTERM), then cleans up. */
async function stayUp(keep: { redisUrl: string; keyPrefix: string; cleanup: () => Promise<void> }): Promise<void> {
  try {
    const port = Number.parseInt(process.env.DEMO_CONSOLE_PORT ?? '0', 10) || 0;
    const { app, url } = await startConsoleDemo(keep.redisUrl, `${keep.keyPrefix}:tour`, port, process.env.DEMO_VERBOSE === '1');
    console.log(`  Operator console: ${url}  (DEMO_STAY_UP=1; read/write, no guard, loopback only; Ctrl-C to stop)`);
    console.log('  Two flaky orders of console.demo.orders are dead-lettered on purpose: redrive them from the console.\n');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    console.log('\n  Stopping the console and cleaning up');
    await app.close();
  } finally {
    await keep.cleanup();
  }
}
