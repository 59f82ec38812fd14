import type { RetentionGroup, RetentionReply } from '../connection/redis-replies.js';
import { assessRetention, compareIds, lostUnread, retentionState } from './retention-policy.js';

const group = (over: Partial<RetentionGroup> = {}): RetentionGroup => ({
  name: 'g',
  consumers: 1,
  pending: 0,
  lastDeliveredId: '0-0',
  entriesRead: 0,
  lag: 0,
  neededId: '0-1',
  pendingGone: 0,
  unreadInStream: null,
  ...over,
});

const reply = (over: Partial<RetentionReply> = {}): RetentionReply => ({
  length: 240,
  entriesAdded: 1_040,
  firstId: '801-0',
  lastId: '1040-0',
  maxDeletedId: '0-0',
  nowMs: 2_000,
  policyBoundaryId: null,
  safeBoundaryId: null,
  cutsIntoGroups: false,
  trimmed: 0,
  groups: [],
  ...over,
});

describe('compareIds', () => {
  it('orders by milliseconds, then sequence, as numbers of any length', () => {
    expect(compareIds('9-0', '10-0')).toBe(-1);
    expect(compareIds('10-2', '10-10')).toBe(-1);
    expect(compareIds('10-10', '10-10')).toBe(0);
    expect(compareIds('18446744073709551615-1', '18446744073709551614-9')).toBe(1);
  });
});

describe('lostUnread (entries trimmed before the group read them)', () => {
  // Entries 1..1040 ever added (id n-0), 1..800 trimmed; the group read entries 1..40.
  it('counts every removed entry it had not read while it is before the first entry', () => {
    expect(lostUnread(reply(), group({ lastDeliveredId: '40-0', entriesRead: 40 }))).toBe(760);
  });

  it('still counts them once it read on to the end (entries-read skipped them)', () => {
    expect(lostUnread(reply(), group({ lastDeliveredId: '1040-0', entriesRead: 280 }))).toBe(760);
  });

  it('in the middle of the stream, needs the count of entries after its last-delivered id', () => {
    const reader = group({ lastDeliveredId: '850-0', entriesRead: 90 });
    expect(lostUnread(reply(), reader)).toBeNull();
    expect(lostUnread(reply(), { ...reader, unreadInStream: 190 })).toBe(760);
  });

  it('is 0 for a group that read everything before it was trimmed, and never negative', () => {
    expect(lostUnread(reply(), group({ lastDeliveredId: '1040-0', entriesRead: 1_040 }))).toBe(0);
    expect(lostUnread(reply({ length: 0, firstId: null, lastId: null }), group({ lastDeliveredId: '1040-0', entriesRead: 1_040 }))).toBe(0);
  });

  it('is unknown without entries-read (Redis 6.2, a group that never read, XGROUP SETID) or entries-added', () => {
    expect(lostUnread(reply(), group({ entriesRead: null }))).toBeNull();
    expect(lostUnread(reply({ entriesAdded: null }), group({ entriesRead: 40 }))).toBeNull();
  });
});

describe('assessRetention', () => {
  const groups = [
    group({ name: 'slow', pending: 40, lastDeliveredId: '40-0', entriesRead: 40, neededId: '1-0' }),
    group({ name: 'fast', lastDeliveredId: '1040-0', entriesRead: 1_040, neededId: '1040-1' }),
  ];

  it("'safe': names the groups holding retention back and what they keep beyond the limits", () => {
    const status = assessRetention(
      reply({ length: 1_040, firstId: '1-0', policyBoundaryId: '841-0', safeBoundaryId: '1-0', cutsIntoGroups: true, groups, nowMs: 60_001 }),
      { trimming: 'safe', maxLen: 200, retentionMs: 60_000 },
    );
    expect(status).toMatchObject({ behindLimit: ['slow'], entriesOverLimit: 840, ageOverLimitMs: 0, lossCountExact: true });
    expect(status.groups.map((g) => [g.group, g.unread, g.lostUnread])).toEqual([['slow', null, null], ['fast', 0, 0]]);
    const old = assessRetention(reply({ firstId: '1-0', policyBoundaryId: '841-0', safeBoundaryId: '1-0', cutsIntoGroups: true, groups, nowMs: 70_001 }), { trimming: 'safe', retentionMs: 60_000 });
    expect(old.ageOverLimitMs).toBe(10_000);
  });

  it("'safe': nothing held back when every group is past the boundary", () => {
    const status = assessRetention(reply({ policyBoundaryId: '1-0', safeBoundaryId: '1-0', groups }), { trimming: 'safe', maxLen: 200 });
    expect(status).toMatchObject({ behindLimit: [], entriesOverLimit: 0 });
  });

  it('flags counts as inexact once an XDEL happened', () => {
    expect(assessRetention(reply({ maxDeletedId: '5-0' }), { trimming: 'hard', maxLen: 200 }).lossCountExact).toBe(false);
  });
});

describe('retentionState (what the log reports, once per change)', () => {
  it("'hard': near the limit before any loss, losing once a needed entry is gone", () => {
    const limits = { trimming: 'hard' as const, maxLen: 200 };
    const before = reply({ length: 220, entriesAdded: 220, firstId: '1-0', lastId: '220-0' });
    const near = { ...before, groups: [group({ pending: 40, lastDeliveredId: '40-0', entriesRead: 40, neededId: '1-0', unreadInStream: 180, lag: 180 })] };
    expect(retentionState(near, assessRetention(near, limits), limits)).toEqual(new Map([['g', 'near']]));
    const calm = { ...before, groups: [group({ pending: 40, lastDeliveredId: '40-0', entriesRead: 40, neededId: '1-0', unreadInStream: 150, lag: 150 })] };
    expect(retentionState(calm, assessRetention(calm, limits), limits)).toEqual(new Map());
    const after = { ...reply(), groups: [group({ pending: 40, lastDeliveredId: '40-0', entriesRead: 40, neededId: '1-0', pendingGone: 40 })] };
    expect(retentionState(after, assessRetention(after, limits), limits)).toEqual(new Map([['g', 'losing']]));
  });

  it("'hard': an old unfinished entry is near the time limit; a caught-up group is not", () => {
    const limits = { trimming: 'hard' as const, retentionMs: 10_000 };
    const stale = reply({ nowMs: 9_000, firstId: '1-0', groups: [group({ neededId: '500-0', lastDeliveredId: '499-0', unreadInStream: 1 })] });
    expect(retentionState(stale, assessRetention(stale, limits), limits)).toEqual(new Map([['g', 'near']]));
    const idle = reply({ nowMs: 90_000, firstId: '1-0', groups: [group({ neededId: '1040-1', lastDeliveredId: '1040-0', entriesRead: 1_040 })] });
    expect(retentionState(idle, assessRetention(idle, limits), limits)).toEqual(new Map());
  });

  it("'safe': the groups holding retention back", () => {
    const limits = { trimming: 'safe' as const, maxLen: 200 };
    const held = reply({ firstId: '1-0', policyBoundaryId: null, safeBoundaryId: '1-0', cutsIntoGroups: true, groups: [group({ name: 'slow', neededId: '1-0' }), group({ name: 'fast', neededId: '1040-1' })] });
    expect(retentionState(held, assessRetention(held, limits), limits)).toEqual(new Map([['slow', 'held']]));
  });
});
