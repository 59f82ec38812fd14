import { hashKey64 } from './jump-hash.js';
import { type AssignmentView, planAssignment, quotaOf } from './partition-assignment.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

const view = (o: Partial<AssignmentView> & Pick<AssignmentView, 'self'>): AssignmentView => ({
  members: [o.self],
  owners: new Map(),
  partitions: range(12),
  balanced: true,
  ...o,
});

type Owners = Map<number, string>;

/**
 * Runs rounds of the protocol until nothing changes. `concurrent`: every member plans on the same
 * snapshot, then all apply (a race, as in production); otherwise each member plans on the map as
 * left by the previous member. A member releases only what it holds and acquires only what is still
 * free (absent or held by a non-member): this is what the Redis lease script enforces.
 */
function converge(members: readonly string[], partitions: readonly number[], start: Owners, concurrent: boolean): Owners {
  const owners = new Map(start);
  const live = new Set(members);
  for (let round = 0; round < 50; round++) {
    let changed = false;
    const snapshot = new Map(owners);
    for (const self of members) {
      const plan = planAssignment({ self, members, owners: concurrent ? snapshot : owners, partitions, balanced: true });
      for (const p of plan.release) {
        if (owners.get(p) === self) {
          owners.delete(p);
          changed = true;
        }
      }
      for (const p of plan.acquire) {
        const owner = owners.get(p);
        if (owner === undefined || !live.has(owner)) {
          owners.set(p, self);
          changed = true;
        }
      }
    }
    if (!changed) {
      for (const self of members) {
        const plan = planAssignment({ self, members, owners, partitions, balanced: true });
        expect({ self, release: plan.release, acquire: plan.acquire }).toEqual({ self, release: [], acquire: [] });
      }
      return owners;
    }
  }
  throw new Error(`no stable assignment after 50 rounds for ${members.length} members`);
}

function expectBalanced(owners: Owners, members: readonly string[], partitions: readonly number[]): void {
  expect(partitions.filter((p) => !members.includes(owners.get(p) ?? ''))).toEqual([]);
  const counts = members.map((m) => partitions.filter((p) => owners.get(p) === m).length);
  expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  expect(counts).toEqual(members.map((m) => quotaOf(m, members, partitions.length)));
}

const movedBetween = (before: Owners, after: Owners, partitions: readonly number[]): number[] =>
  partitions.filter((p) => before.get(p) !== after.get(p));

describe('quotaOf', () => {
  it('gives floor(P/M) and one more to the first P%M members in sorted order', () => {
    const members = ['c', 'a', 'b', 'd', 'e'];
    expect(['a', 'b', 'c', 'd', 'e'].map((m) => quotaOf(m, members, 12))).toEqual([3, 3, 2, 2, 2]);
  });

  it('sums to the partition count and differs by at most one', () => {
    for (const m of [1, 2, 3, 5, 7, 16]) {
      const members = range(m).map((i) => `consumer-${i}`);
      for (const p of [0, 1, 2, 3, 11, 12, 13, 64, 100]) {
        const quotas = members.map((member) => quotaOf(member, members, p));
        expect(quotas.reduce((a, b) => a + b, 0)).toBe(p);
        expect(Math.max(...quotas) - Math.min(...quotas)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('ignores duplicates and input order', () => {
    expect(quotaOf('b', ['b', 'a', 'b', 'a'], 3)).toBe(1);
    expect(quotaOf('a', ['b', 'a', 'b', 'a'], 3)).toBe(2);
  });

  it('sorts by code units, not by locale', () => {
    // 'B' (0x42) < 'a' (0x61) in code units; a locale collation would put 'a' first.
    expect(quotaOf('B', ['a', 'B'], 1)).toBe(1);
    expect(quotaOf('a', ['a', 'B'], 1)).toBe(0);
  });

  it('counts a member missing from the list', () => {
    expect(quotaOf('z', ['a', 'b'], 7)).toBe(2);
    expect(quotaOf('0', ['a', 'b'], 7)).toBe(3);
  });

  it('gives 0 to the members after the first P when members outnumber partitions', () => {
    expect(['a', 'b', 'c', 'd'].map((m) => quotaOf(m, ['d', 'c', 'b', 'a'], 2))).toEqual([1, 1, 0, 0]);
  });

  it.each([-1, 1.5, Number.NaN])('rejects a partition count of %p', (count) => {
    expect(() => quotaOf('a', ['a'], count)).toThrow(RangeError);
  });
});

describe('planAssignment', () => {
  it('plans to acquire its quota from an empty view, best rendezvous score first', () => {
    const plan = planAssignment(view({ self: 'b', members: ['a', 'b', 'c'] }));
    expect(plan.keep).toEqual([]);
    expect(plan.release).toEqual([]);
    const expected = range(12)
      .map((p) => ({ p, score: hashKey64(`${p}:b`) }))
      .sort((x, y) => (x.score > y.score ? -1 : x.score < y.score ? 1 : 0))
      .map((x) => x.p)
      .slice(0, 4);
    expect(plan.acquire).toEqual(expected);
  });

  it('lets concurrent members want mostly different partitions', () => {
    const members = ['a', 'b', 'c'];
    const wants = members.map((self) => planAssignment(view({ self, members })).acquire);
    expect(new Set(wants.flat()).size).toBeGreaterThan(4);
  });

  it('keeps what it owns within its quota and acquires only the rest', () => {
    const owners = new Map([
      [0, 'a'],
      [5, 'a'],
      [1, 'b'],
    ]);
    const plan = planAssignment(view({ self: 'a', members: ['a', 'b', 'c'], owners }));
    expect(plan.keep).toEqual([0, 5]);
    expect(plan.release).toEqual([]);
    expect(plan.acquire).toHaveLength(2);
    expect(plan.acquire).not.toContain(1);
  });

  it('keeps the lowest-numbered partitions and releases the rest when over quota', () => {
    const owners = new Map(range(12).map((p) => [p, 'a'] as const));
    const plan = planAssignment(view({ self: 'a', members: ['a', 'b', 'c'], owners }));
    expect(plan).toEqual({ keep: [0, 1, 2, 3], release: range(12).slice(4), acquire: [] });
  });

  it('never plans to acquire a partition another live member owns, even when under quota', () => {
    const owners = new Map(range(12).map((p) => [p, 'b'] as const));
    const plan = planAssignment(view({ self: 'a', members: ['a', 'b'], owners }));
    expect(plan).toEqual({ keep: [], release: [], acquire: [] });
  });

  it('counts a partition held by a non-member as free', () => {
    const owners = new Map([
      [0, 'gone'],
      [1, 'b'],
    ]);
    const plan = planAssignment(view({ self: 'a', members: ['a', 'b'], owners, partitions: [0, 1] }));
    expect(plan).toEqual({ keep: [], release: [], acquire: [0] });
  });

  it('treats self as a member when missing from the list', () => {
    const plan = planAssignment(view({ self: 'b', members: ['a'], partitions: range(4) }));
    expect(plan.acquire).toHaveLength(2);
    const owned = planAssignment(view({ self: 'b', members: ['a'], owners: new Map([[3, 'b']]), partitions: range(4) }));
    expect(owned.keep).toEqual([3]);
  });

  it('plans nothing for an empty partition list', () => {
    expect(planAssignment(view({ self: 'a', members: ['a', 'b'], partitions: [] }))).toEqual({
      keep: [],
      release: [],
      acquire: [],
    });
  });

  it('releases everything when its quota is 0', () => {
    const owners = new Map([[1, 'c']]);
    const plan = planAssignment(view({ self: 'c', members: ['a', 'b', 'c'], owners, partitions: [0, 1] }));
    expect(plan).toEqual({ keep: [], release: [1], acquire: [] });
  });

  it('ignores duplicate partitions, order, and owners of partitions outside the list', () => {
    const owners = new Map([
      [2, 'a'],
      [99, 'a'],
    ]);
    const plan = planAssignment(view({ self: 'a', members: ['a'], owners, partitions: [3, 2, 1, 0, 2, 1] }));
    expect(plan.keep).toEqual([2]);
    expect(plan.release).toEqual([]);
    expect([...plan.acquire].sort((x, y) => x - y)).toEqual([0, 1, 3]);
  });

  it('keeps everything owned and acquires everything free when not balanced', () => {
    const owners = new Map([
      [0, 'a'],
      [1, 'a'],
      [2, 'a'],
      [3, 'b'],
      [4, 'gone'],
    ]);
    const plan = planAssignment(view({ self: 'a', members: ['a', 'b', 'c'], owners, partitions: range(7), balanced: false }));
    expect(plan).toEqual({ keep: [0, 1, 2], release: [], acquire: [4, 5, 6] });
  });

  it('is pure: same view, same plan, view untouched', () => {
    const owners = new Map([[3, 'a']]);
    const members = ['b', 'a'];
    const v = view({ self: 'a', members, owners });
    expect(planAssignment(v)).toEqual(planAssignment(v));
    expect(members).toEqual(['b', 'a']);
    expect([...owners]).toEqual([[3, 'a']]);
  });
});

describe('planAssignment rounds (sticky convergence)', () => {
  const partitions = range(12);

  it.each([
    ['sequential', false],
    ['concurrent', true],
  ])('converges from empty, then moves only what a join or leave needs (%s)', (_mode, concurrent) => {
    const three = ['m-a', 'm-b', 'm-c'];
    const initial = converge(three, partitions, new Map(), concurrent);
    expectBalanced(initial, three, partitions);

    const four = [...three, 'm-d'];
    const joined = converge(four, partitions, initial, concurrent);
    expectBalanced(joined, four, partitions);
    const movedOnJoin = movedBetween(initial, joined, partitions);
    expect(movedOnJoin.length).toBeLessThanOrEqual(Math.ceil(12 / 4) + 1);
    expect(movedOnJoin.every((p) => joined.get(p) === 'm-d')).toBe(true);

    const leaving = 'm-b';
    const rest = four.filter((m) => m !== leaving);
    // The leaver's leases are still in the map (not yet expired): they must count as free.
    const left = converge(rest, partitions, joined, concurrent);
    expectBalanced(left, rest, partitions);
    const movedOnLeave = movedBetween(joined, left, partitions);
    expect(movedOnLeave).toEqual(partitions.filter((p) => joined.get(p) === leaving));
  });

  it.each([1, 5, 7, 13, 16, 30])('stays sticky over joins and leaves with %p partitions', (count) => {
    const ps = range(count);
    let members = ['n1', 'n2'];
    let owners = converge(members, ps, new Map(), true);
    expectBalanced(owners, members, ps);
    for (const joiner of ['n3', 'n0', 'n5', 'n4']) {
      const next = [...members, joiner];
      const after = converge(next, ps, owners, true);
      expectBalanced(after, next, ps);
      // Quotas of existing members never rise on a join, so every moved partition goes to the joiner.
      const moved = movedBetween(owners, after, ps);
      expect(moved.length).toBeLessThanOrEqual(Math.ceil(count / next.length));
      expect(moved.filter((p) => after.get(p) !== joiner)).toEqual([]);
      members = next;
      owners = after;
    }
    for (const leaver of ['n0', 'n4', 'n2']) {
      const next = members.filter((m) => m !== leaver);
      const after = converge(next, ps, owners, true);
      expectBalanced(after, next, ps);
      const moved = movedBetween(owners, after, ps);
      const leaversShare = ps.filter((p) => owners.get(p) === leaver);
      // Quotas of the remaining members never fall on a leave, so only the leaver's partitions move.
      expect(moved).toEqual(leaversShare);
      members = next;
      owners = after;
    }
  });

  it('gives some members nothing when they outnumber the partitions', () => {
    const members = ['a', 'b', 'c', 'd', 'e'];
    const owners = converge(members, range(3), new Map(), true);
    expectBalanced(owners, members, range(3));
    expect(new Set(owners.values()).size).toBe(3);
  });
});
