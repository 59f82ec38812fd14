import { runWithConcurrency } from './concurrency.js';

describe('runWithConcurrency', () => {
  it('never has more than the limit in flight and keeps results in index order', async () => {
    let running = 0;
    let maxRunning = 0;
    const results = await runWithConcurrency(20, 3, async (i) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      if (i === 5) throw new Error('five');
      return i * 2;
    });
    expect(maxRunning).toBe(3);
    expect(results[4]).toEqual({ status: 'fulfilled', value: 8 });
    expect(results[5]).toMatchObject({ status: 'rejected', reason: new Error('five') });
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(19);
  });
});
