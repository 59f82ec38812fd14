import { retentionWarnings } from './retention-check.js';

describe('retentionWarnings', () => {
  const base = { stream: 's', group: 'g', lag: 0, oldestUnfinishedMs: null, nowMs: 100_000 };

  it('is silent without trimming or when the group keeps up', () => {
    expect(retentionWarnings(base)).toEqual([]);
    expect(retentionWarnings({ ...base, maxLen: 1_000, lag: 800, retentionMs: 60_000, oldestUnfinishedMs: 100_000 - 48_000 })).toEqual([]);
  });

  it('warns when the lag passes 80 % of maxLen', () => {
    expect(retentionWarnings({ ...base, maxLen: 1_000, lag: 801 })).toEqual([expect.stringContaining('801 entries behind')]);
  });

  it('warns when the oldest unfinished entry passes 80 % of retentionMs', () => {
    expect(retentionWarnings({ ...base, retentionMs: 60_000, oldestUnfinishedMs: 100_000 - 48_001 })).toEqual([
      expect.stringContaining('48 s old'),
    ]);
  });
});
