import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { CommitOutcome } from '../connection/stream-commands.js';
import { LaneCommits } from './lane-commits.js';

/*
 * LaneCommits against commit functions the test answers by hand: each `send` waits until the test resolves it with an
 * outcome (undefined = Redis could not be reached). Retries wait 250 ms on fake timers (setImmediate stays real).
 */

interface Pending {
  readonly id: string;
  answer(outcome: CommitOutcome | undefined): void;
}

class Lane {
  readonly sent: Pending[] = [];
  readonly results = new Map<string, boolean>();
  owned = true;

  constructor(
    private readonly commits: LaneCommits,
    private readonly lane = 'k1',
    private readonly lease = 'L1',
  ) {}

  commit(id: string): Promise<boolean> {
    const done = this.commits.commit({
      lane: this.lane,
      lease: this.lease,
      stillOwned: () => this.owned,
      send: () => new Promise<CommitOutcome | undefined>((resolve) => this.sent.push({ id, answer: resolve })),
    });
    return done.then((committed) => {
      this.results.set(id, committed);
      return committed;
    });
  }

  ids(): string[] {
    return this.sent.map((p) => p.id);
  }

  last(): Pending {
    const p = this.sent.at(-1);
    if (!p) throw new Error('nothing sent');
    return p;
  }
}

async function turns(count = 5): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

afterEach(() => {
  jest.useRealTimers();
});

describe('LaneCommits', () => {
  it('sends one commit of a lane at a time, in order: a later one only once the earlier is confirmed', async () => {
    const lane = new Lane(new LaneCommits(() => false));
    const first = lane.commit('1-0');
    void lane.commit('2-0');
    void lane.commit('3-0');
    await turns();
    expect(lane.ids()).toEqual(['1-0']);
    lane.last().answer('ok');
    await expect(first).resolves.toBe(true);
    await turns();
    expect(lane.ids()).toEqual(['1-0', '2-0']);
    lane.last().answer('duplicate'); // committed before (a redelivery): confirmed too
    await turns();
    lane.last().answer('ok');
    await turns();
    expect([...lane.results]).toEqual([
      ['1-0', true],
      ['2-0', true],
      ['3-0', true],
    ]);
  });

  it('lanes do not wait for each other', async () => {
    const commits = new LaneCommits(() => false);
    const a = new Lane(commits, 'a');
    const b = new Lane(commits, 'b');
    void a.commit('1-0');
    void b.commit('2-0');
    await turns();
    expect(a.ids()).toEqual(['1-0']);
    expect(b.ids()).toEqual(['2-0']);
  });

  it('a refused commit (fenced or gone) abandons every later commit of its lane in the ownership period, unsent', async () => {
    for (const refusal of ['fenced', 'gone'] as const) {
      const commits = new LaneCommits(() => false);
      const lane = new Lane(commits);
      void lane.commit('1-0');
      void lane.commit('2-0');
      await turns();
      lane.last().answer(refusal);
      await turns();
      expect([...lane.results]).toEqual([
        ['1-0', false],
        ['2-0', false],
      ]);
      expect(lane.ids()).toEqual(['1-0']); // 2-0 stays pending: the next owner handles it after 1-0
      await expect(lane.commit('3-0')).resolves.toBe(false); // same lease: abandoned too
      expect(lane.ids()).toEqual(['1-0']);
      const next = new Lane(commits, 'k1', 'L2'); // a new ownership period commits again
      void next.commit('4-0');
      await turns();
      expect(next.ids()).toEqual(['4-0']);
    }
  });

  it('a commit that cannot reach Redis is sent again while the partition is ours, later ones waiting; abandoned once it is not', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'] });
    const lane = new Lane(new LaneCommits(() => false));
    void lane.commit('1-0');
    void lane.commit('2-0');
    await turns();
    lane.last().answer(undefined);
    await turns();
    await jest.advanceTimersByTimeAsync(250);
    expect(lane.ids()).toEqual(['1-0', '1-0']); // again, alone
    lane.last().answer(undefined);
    lane.owned = false;
    await turns();
    expect([...lane.results]).toEqual([
      ['1-0', false],
      ['2-0', false],
    ]);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(lane.ids()).toEqual(['1-0', '1-0']);
  });

  it('does not send a failed commit again once the connection is closed', async () => {
    let closed = false;
    const lane = new Lane(new LaneCommits(() => closed));
    const first = lane.commit('1-0');
    await turns();
    closed = true;
    lane.last().answer(undefined);
    await expect(first).resolves.toBe(false);
    expect(lane.ids()).toEqual(['1-0']);
  });
});
