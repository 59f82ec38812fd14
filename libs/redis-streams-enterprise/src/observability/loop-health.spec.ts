import { escapeControl, logFields, logIds } from './log-format.js';
import { FAILING_AFTER, FailureStreak, loopReasons, loopReport } from './loop-health.js';
import { MINIMUM_REDIS_VERSION, preflightWarnings, versionBelow } from './redis-preflight.js';

describe('escapeControl / logIds / logFields', () => {
  it('writes control characters as escapes, so text from a message stays on one line', () => {
    expect(escapeControl('a\nb\r\tc\u001b[31m\u0000\u007f\u2028')).toBe('a\\nb\\r\\tc\\x1b[31m\\x00\\x7f\\u2028');
    expect(logIds({ stream: 's', pattern: 'p\nq', id: '1-0' })).toBe('stream=s pattern=p\\nq id=1-0');
    expect(logFields({ stream: 's', id: '1-0', reason: 'r', error: new Error('x\ny') })).toEqual({ stream: 's', entryId: '1-0', reason: 'r', error: 'Error: x\\ny' });
  });
});

describe('loop health', () => {
  it('reports a loop failing FAILING_AFTER times in a row, with when it began and the redacted error', () => {
    let now = 1_000;
    const streak = new FailureStreak(() => now);
    streak.failed(new Error('OOM command not allowed redis://u:secret@h'));
    now = 2_000;
    for (let i = 1; i < FAILING_AFTER; i++) streak.failed(new Error('OOM command not allowed redis://u:secret@h'));
    const report = loopReport('retries', streak.health(), null);
    expect(report).toMatchObject({ failures: FAILING_AFTER, failingSince: new Date(1_000).toISOString() });
    expect(report.lastError).not.toContain('secret');
    expect(loopReasons(report)).toEqual([expect.stringMatching(/^retries keeps failing \(3 times in a row since 1970-01-01T00:00:01.000Z\): Error: OOM/)]);
    streak.succeeded();
    expect(loopReasons(loopReport('retries', streak.health(), null))).toEqual([]);
  });

  it('reports a pass that has run longer than its stuck limit', () => {
    const health = { running: true, failures: 0, failingSinceMs: null, lastError: undefined, busyMs: 90_000 };
    expect(loopReasons(loopReport('reclaiming', health, 60_000))).toEqual(['reclaiming is stuck: one pass has run for 90 s (limit 60 s)']);
    expect(loopReasons(loopReport('reclaiming', { ...health, busyMs: 10_000 }, 60_000))).toEqual([]);
  });
});

describe('preflight warnings', () => {
  const fine = { serverVersion: '7.0.15', maxmemoryPolicy: 'noeviction', aofEnabled: true, appendfsync: 'everysec', connectedReplicas: 0 };

  it('compares versions', () => {
    expect(versionBelow('6.0.16', MINIMUM_REDIS_VERSION)).toBe(true);
    expect(versionBelow('6.2.0', MINIMUM_REDIS_VERSION)).toBe(false);
    expect(versionBelow('10.0.0', MINIMUM_REDIS_VERSION)).toBe(false);
  });

  it('warns about an old server, eviction, AOF off or appendfsync no, and missing replicas; nothing when all is well', () => {
    expect(preflightWarnings(fine, 0)).toEqual([]);
    expect(preflightWarnings({ ...fine, serverVersion: '6.0.9' }, 0)).toEqual([expect.stringMatching(/^Redis 6.0.9 is older than 6.2.0/)]);
    expect(preflightWarnings({ ...fine, maxmemoryPolicy: 'volatile-lru' }, 0)).toEqual([expect.stringMatching(/^maxmemory-policy is volatile-lru: .*keys with a TTL/)]);
    expect(preflightWarnings({ ...fine, appendfsync: 'no' }, 0)).toEqual([expect.stringMatching(/^appendfsync is no/)]);
    expect(preflightWarnings({ ...fine, aofEnabled: false, appendfsync: 'no' }, 0)).toEqual([expect.stringMatching(/^AOF is off/)]);
    expect(preflightWarnings({ ...fine, connectedReplicas: 1 }, 2)).toEqual([expect.stringMatching(/^connection.waitReplicas is 2 but the server has 1 connected replicas/)]);
    expect(preflightWarnings({ ...fine, connectedReplicas: null }, 2)).toEqual([]);
  });
});
