import type { RedisStreamsServerStatus } from '../transport/server-status.js';
import { thresholdReasons } from './health-thresholds.js';
import { loadHealthIndicatorService } from './terminus-loader.js';
import { OptionalDependencyMissingError } from '../errors/optional-dependency-missing.error.js';

const status = (streams: { lag: number | null; pending: number | null; oldestPendingMs: number | null }[]) =>
  ({ streams: streams.map((s, i) => ({ stream: `p:{s${i}}`, ...s })) }) as unknown as RedisStreamsServerStatus;

describe('readiness thresholds', () => {
  it('names each stream over a limit; no limits, no reasons', () => {
    const s = status([{ lag: 5, pending: 2, oldestPendingMs: 1_000 }, { lag: null, pending: null, oldestPendingMs: null }]);
    expect(thresholdReasons(s, {})).toEqual([]);
    expect(thresholdReasons(s, { maxLag: 4, maxPending: 2, maxOldestPendingMs: 999 })).toEqual([
      'lag of p:{s0} is 5 entries (limit 4)',
      'the oldest pending entry of p:{s0} is 1000 ms old (limit 999 ms)',
    ]);
  });
});

describe('loading @nestjs/terminus', () => {
  it('names the package to install when it is missing, and loads HealthIndicatorService when present', async () => {
    const missing = Object.assign(new Error("Cannot find package '@nestjs/terminus'"), { code: 'ERR_MODULE_NOT_FOUND' });
    await expect(loadHealthIndicatorService(() => Promise.reject(missing))).rejects.toThrow(OptionalDependencyMissingError);
    await expect(loadHealthIndicatorService(() => Promise.reject(missing))).rejects.toThrow(/npm install @nestjs\/terminus/);
    await expect(loadHealthIndicatorService(async () => ({}))).rejects.toThrow(/Terminus 11 or later/);
    // Terminus 11 (CommonJS) seen through import(): named exports, or only a default export.
    class FakeService {
      check(key: string) {
        return { up: () => ({ [key]: { status: 'up' } }), down: () => ({ [key]: { status: 'down' } }) };
      }
    }
    expect(await loadHealthIndicatorService(async () => ({ default: { HealthIndicatorService: FakeService } }))).toBe(FakeService);
    const Service = await loadHealthIndicatorService();
    expect(new Service().check('x').up({ a: 1 })).toEqual({ x: { status: 'up', a: 1 } });
  });
});
