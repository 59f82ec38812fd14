import 'reflect-metadata';
import { enterpriseFeaturesExample, RedisServerMissingError } from './enterprise-features.example.js';
import { REDIS_INSTALL_HINT } from './redis-server.process.js';

/**
 * `npm run demo`. Environment: REDIS_URL (default: a throw-away redis-server), DEMO_EVENTS (3000),
 * DEMO_REQUESTS (500), DEMO_CONCURRENCY (50), DEMO_VERBOSE=1 for the consumer's and Nest's logs, DEMO_TOUR=0 to skip
 * the tour of the enterprise features.
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
  });
  console.log(result.summary);
  if (result.ok) {
    console.log(`\n  PASS: every event was delivered, every request answered${tour ? ' and every tour check held' : ''}.\n`);
  } else {
    console.log(`\n  FAIL:\n${result.failures.map((f) => `    - ${f}`).join('\n')}\n`);
  }
  process.exitCode = result.ok ? 0 : 1;
} catch (error) {
  if (error instanceof RedisServerMissingError) {
    console.error(`\n${REDIS_INSTALL_HINT}\n`);
  } else {
    console.error(`\nDemo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exitCode = 1;
}
