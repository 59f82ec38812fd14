import { backoffDelayMs } from './backoff.js';
import { BackoffOptions } from '../config/retry.options.js';

const options = (o: Partial<BackoffOptions>) => Object.assign(new BackoffOptions(), o);

describe('backoffDelayMs', () => {
  it('doubles per failed attempt up to the cap', () => {
    const o = options({ delayMs: 100, maxDelayMs: 1_000, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(o, a))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('is constant when fixed', () => {
    const o = options({ type: 'fixed', delayMs: 250, jitter: 0 });
    expect([1, 5, 50].map((a) => backoffDelayMs(o, a))).toEqual([250, 250, 250]);
  });

  it('spreads by the jitter fraction', () => {
    const o = options({ delayMs: 1_000, maxDelayMs: 10_000, jitter: 0.5 });
    expect(backoffDelayMs(o, 1, () => 0)).toBe(500);
    expect(backoffDelayMs(o, 1, () => 1)).toBe(1_500);
  });
});
