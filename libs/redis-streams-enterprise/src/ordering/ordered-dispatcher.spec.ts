import { waitFor } from '../../../../test/support/wait-for.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import { InFlight } from '../runtime/in-flight.js';
import { type DispatchHooks, type LaneRule, OrderedDispatcher, type OwnedPartition } from './ordered-dispatcher.js';

/*
 * The dispatcher re-pumps on setImmediate and re-checks waiting gates every 100 ms with real timers, so these specs
 * use real time: they poll for outcomes (`until`) instead of sleeping. Where a spec asserts that something did NOT
 * happen, it first waits for a witness that proves the dispatcher had its chance (a later hook call, another
 * entry starting), or lets the event loop turn (`turns`) when the only re-pump is a setImmediate.
 */

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const P0: OwnedPartition = { pattern: 'orders', partition: 0, stream: 'rse:orders:p:0' };
const P1: OwnedPartition = { pattern: 'orders', partition: 1, stream: 'rse:orders:p:1' };

function entry(id: string, fields: Record<string, string> = {}, stream = P0.stream): DeliveredEntry {
  return { id, stream, deliveryCount: 1, fields: { data: '{}', ...fields } };
}

/** Lane = stream + the entry's `lane` field (like OrderingManager's per-key lanes); no field = no lane. */
const laneByField: LaneRule = {
  laneOf: (stream, e) => (e.fields.lane === undefined ? null : `${stream}\n${e.fields.lane}`),
};

const until = (predicate: () => boolean, message: string, timeoutMs = 2_000): Promise<void> =>
  waitFor(predicate, { timeoutMs, intervalMs: 2, message });

/** Lets the event loop turn a few times, so that setImmediate re-pumps (after a handler settled) have run. */
async function turns(count = 5): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Hooks whose handlers run until the test finishes them by hand. */
class FakeHooks implements DispatchHooks {
  /** Ids of started handlers (process and control), in start order. */
  readonly started: string[] = [];
  readonly finished: string[] = [];
  readonly controls: string[] = [];
  readonly flags = new Map<string, { causalTimedOut: boolean }>();
  readonly partitionsSeen = new Map<string, OwnedPartition>();
  readonly parentsCalls: { partition: OwnedPartition; epoch: number }[] = [];
  readonly dependencyCalls: string[][] = [];
  /** Answer of parentsDrained (a function may return a promise the test resolves or rejects). */
  parents: (epoch: number) => boolean | Promise<boolean> = () => false;
  /** Answer of dependenciesDone. */
  dependencies: (deps: readonly string[]) => boolean | Promise<boolean> = () => false;
  running = 0;
  maxRunning = 0;
  maxInFlight = 0;
  private readonly pending = new Map<string, Deferred<void>>();

  constructor(private readonly inFlight: InFlight) {}

  /** releaseLane of each started entry, to let the lane's next entry start before it finished. */
  readonly releases = new Map<string, () => void>();

  process(e: DeliveredEntry, partition: OwnedPartition, flags: { causalTimedOut: boolean; releaseLane: () => void }): Promise<void> {
    this.flags.set(e.id, { causalTimedOut: flags.causalTimedOut });
    this.releases.set(e.id, flags.releaseLane);
    return this.begin(e, partition);
  }

  control(e: DeliveredEntry, partition: OwnedPartition): Promise<void> {
    this.controls.push(e.id);
    return this.begin(e, partition);
  }

  parentsDrained(partition: OwnedPartition, epoch: number): Promise<boolean> {
    this.parentsCalls.push({ partition, epoch });
    return Promise.resolve(this.parents(epoch)); // answered as of the call
  }

  dependenciesDone(dependencies: readonly string[]): Promise<boolean> {
    this.dependencyCalls.push([...dependencies]);
    return Promise.resolve(this.dependencies(dependencies)); // answered as of the call
  }

  isRunning(id: string): boolean {
    return this.pending.has(id);
  }

  finish(id: string): void {
    const handler = this.pending.get(id);
    if (!handler) throw new Error(`${id} is not running (started: ${this.started.join(', ')})`);
    this.pending.delete(id);
    handler.resolve();
  }

  finishAll(): void {
    for (const id of [...this.pending.keys()]) this.finish(id);
  }

  callsFor(dependency: string): number {
    return this.dependencyCalls.filter((deps) => deps.includes(dependency)).length;
  }

  private begin(e: DeliveredEntry, partition: OwnedPartition): Promise<void> {
    if (this.pending.has(e.id)) throw new Error(`${e.id} started twice`);
    this.started.push(e.id);
    this.partitionsSeen.set(e.id, partition);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
    const handler = deferred();
    this.pending.set(e.id, handler);
    return handler.promise.then(() => {
      this.running--;
      this.finished.push(e.id);
    });
  }
}

interface Setup {
  readonly dispatcher: OrderedDispatcher;
  readonly hooks: FakeHooks;
  readonly inFlight: InFlight;
  readonly clock: { now: number };
}

let current: Setup | undefined;

function setup(
  options: { limit?: number; queueLimit?: number; causalTimeoutMs?: number; readWhenHalfFree?: boolean; lanes?: LaneRule; partitions?: OwnedPartition[] } = {},
): Setup {
  const inFlight = new InFlight(options.limit ?? 10);
  const hooks = new FakeHooks(inFlight);
  const clock = { now: 1_000_000 };
  const dispatcher = new OrderedDispatcher(inFlight, options.lanes ?? laneByField, hooks, {
    queueLimit: options.queueLimit ?? 100,
    causalTimeoutMs: options.causalTimeoutMs ?? 30_000,
    readWhenHalfFree: options.readWhenHalfFree,
    now: () => clock.now,
  });
  for (const partition of options.partitions ?? [P0]) dispatcher.add(partition);
  current = { dispatcher, hooks, inFlight, clock };
  return current;
}

afterEach(async () => {
  if (!current) return;
  current.dispatcher.close();
  current.hooks.finishAll();
  await current.inFlight.drain(1_000);
  current = undefined;
});

describe('OrderedDispatcher: lanes', () => {
  it("starts a lane's next entry once the running one releases the lane, while it still runs (its ack on its way)", async () => {
    const { dispatcher, hooks, inFlight } = setup();
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' }), entry('a3', { lane: 'a' })]);
    expect(hooks.started).toEqual(['a1']);
    hooks.releases.get('a1')?.();
    hooks.releases.get('a1')?.(); // a second call changes nothing
    await until(() => hooks.started.includes('a2'), 'a2 to start');
    await turns();
    expect(hooks.started).toEqual(['a1', 'a2']);
    // a1 gave its slot back (only its ack is outstanding) but is still tracked until it settles.
    expect(inFlight.size).toBe(1);
    expect(inFlight.has(P0.stream, 'a1')).toBe(true);
    hooks.finish('a2'); // finished without releasing: the lane is free when it settles
    await until(() => hooks.started.includes('a3'), 'a3 to start');
    expect(hooks.isRunning('a1')).toBe(true);
    hooks.finishAll();
    await until(() => hooks.finished.length === 3, 'all to finish');
  });

  it('runs the entries of one lane one at a time, in stream order', async () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' })]);
    dispatcher.push(P0.stream, [entry('a3', { lane: 'a' })]);
    expect(hooks.started).toEqual(['a1']);
    expect(dispatcher.queued).toBe(2);

    hooks.finish('a1');
    await until(() => hooks.started.includes('a2'), 'a2 to start');
    await turns();
    expect(hooks.started).toEqual(['a1', 'a2']);

    hooks.finish('a2');
    await until(() => hooks.started.includes('a3'), 'a3 to start');
    hooks.finish('a3');
    await until(() => hooks.finished.length === 3, 'all to finish');

    expect(hooks.finished).toEqual(['a1', 'a2', 'a3']);
    expect(hooks.maxRunning).toBe(1);
    expect(dispatcher.queued).toBe(0);
  });

  it('hands each entry to the process hook with its partition and causalTimedOut false', () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('e1')]);
    expect(hooks.partitionsSeen.get('e1')).toMatchObject(P0);
    expect(hooks.flags.get('e1')).toEqual({ causalTimedOut: false });
    expect(hooks.controls).toEqual([]);
  });

  it('runs different lanes in parallel up to the InFlight limit and never beyond it', async () => {
    const { dispatcher, hooks, inFlight } = setup({ limit: 2 });
    dispatcher.push(P0.stream, ['a', 'b', 'c', 'd'].map((lane) => entry(`${lane}1`, { lane })));
    expect(hooks.started).toEqual(['a1', 'b1']);
    expect(inFlight.size).toBe(2);
    expect(dispatcher.queued).toBe(2);

    hooks.finish('b1');
    await until(() => hooks.started.includes('c1'), 'c1 to take the freed slot');
    await turns();
    expect(hooks.started).toEqual(['a1', 'b1', 'c1']);
    expect(inFlight.size).toBe(2);

    hooks.finish('a1');
    await until(() => hooks.started.includes('d1'), 'd1 to take the freed slot');
    expect(hooks.maxRunning).toBe(2);
    expect(hooks.maxInFlight).toBe(2);
  });

  it('never exceeds the InFlight limit across partitions either', async () => {
    const { dispatcher, hooks, inFlight } = setup({ limit: 3, partitions: [P0, P1] });
    dispatcher.push(P0.stream, [entry('p0-1'), entry('p0-2'), entry('p0-3')]);
    dispatcher.push(P1.stream, [entry('p1-1', {}, P1.stream), entry('p1-2', {}, P1.stream)]);
    expect(hooks.started).toEqual(['p0-1', 'p0-2', 'p0-3']);
    expect(inFlight.size).toBe(3);

    hooks.finish('p0-2');
    await until(() => hooks.started.length === 4, 'a P1 entry to take the freed slot');
    expect(hooks.started[3]).toBe('p1-1');
    hooks.finish('p0-1');
    hooks.finish('p0-3');
    await until(() => hooks.started.length === 5, 'the last entry');
    expect(hooks.maxInFlight).toBe(3);
    expect(hooks.maxRunning).toBe(3);
  });

  it('runs entries without a lane (null) fully in parallel', () => {
    const { dispatcher, hooks } = setup({ limit: 100 });
    const entries = Array.from({ length: 8 }, (_, i) => entry(`n${i}`));
    dispatcher.push(P0.stream, entries);
    expect(hooks.started).toEqual(entries.map((e) => e.id));
    expect(hooks.running).toBe(8);
    expect(dispatcher.queued).toBe(0);
  });

  it('runs entries without a lane in parallel only up to the InFlight limit', async () => {
    const { dispatcher, hooks } = setup({ limit: 3 });
    dispatcher.push(P0.stream, Array.from({ length: 5 }, (_, i) => entry(`n${i}`)));
    expect(hooks.started).toEqual(['n0', 'n1', 'n2']);
    hooks.finish('n1');
    await until(() => hooks.started.length === 4, 'n3 to start');
    hooks.finish('n0');
    await until(() => hooks.started.length === 5, 'n4 to start');
    expect(hooks.started).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
    expect(hooks.maxRunning).toBe(3);
  });

  it('lets other lanes pass an entry whose lane is busy, while later entries of that lane keep their order', async () => {
    const { dispatcher, hooks } = setup({ limit: 10 });
    dispatcher.push(P0.stream, [
      entry('a1', { lane: 'a' }),
      entry('a2', { lane: 'a' }),
      entry('b1', { lane: 'b' }),
      entry('a3', { lane: 'a' }),
      entry('b2', { lane: 'b' }),
      entry('n1'),
      entry('b3', { lane: 'b' }),
    ]);
    // a1 is slow; the b lane and the lane-less entry are not held up by the a entries queued before them.
    expect(hooks.started).toEqual(['a1', 'b1', 'n1']);

    hooks.finish('b1');
    await until(() => hooks.started.includes('b2'), 'b2 to start');
    hooks.finish('b2');
    await until(() => hooks.started.includes('b3'), 'b3 to start');
    hooks.finish('b3');
    await until(() => hooks.finished.includes('b3'), 'b3 to finish');
    await turns();
    // Lane a is still held by a1: a2 and a3 wait behind it although b finished everything.
    expect(hooks.started).toEqual(['a1', 'b1', 'n1', 'b2', 'b3']);

    hooks.finish('a1');
    await until(() => hooks.started.includes('a2'), 'a2 to start');
    await turns();
    expect(hooks.isRunning('a3')).toBe(false);
    hooks.finish('a2');
    await until(() => hooks.started.includes('a3'), 'a3 to start');

    const laneA = hooks.started.filter((id) => id.startsWith('a'));
    const laneB = hooks.started.filter((id) => id.startsWith('b'));
    expect(laneA).toEqual(['a1', 'a2', 'a3']);
    expect(laneB).toEqual(['b1', 'b2', 'b3']);
  });

  it('does not give an in-flight slot to entries that wait for their lane', async () => {
    const { dispatcher, hooks, inFlight } = setup({ limit: 2 });
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' }), entry('a3', { lane: 'a' }), entry('b1', { lane: 'b' })]);
    expect(hooks.started).toEqual(['a1', 'b1']);
    expect(inFlight.size).toBe(2);
    expect(inFlight.has(P0.stream, 'a2')).toBe(false);
    hooks.finish('b1');
    await until(() => hooks.finished.includes('b1'), 'b1 to finish');
    await turns();
    expect(inFlight.size).toBe(1);
    expect(hooks.started).toEqual(['a1', 'b1']);
  });

  it('keeps lanes of different partitions apart (same key in two partitions runs in parallel)', () => {
    const { dispatcher, hooks } = setup({ partitions: [P0, P1] });
    dispatcher.push(P0.stream, [entry('p0-a1', { lane: 'a' })]);
    dispatcher.push(P1.stream, [entry('p1-a1', { lane: 'a' }, P1.stream)]);
    expect(hooks.started).toEqual(['p0-a1', 'p1-a1']);
    expect(hooks.partitionsSeen.get('p1-a1')).toMatchObject(P1);
  });

  it('waits for a slot taken by someone else and resumes when it is freed', async () => {
    const { dispatcher, hooks, inFlight } = setup({ limit: 1 });
    const outside = deferred();
    inFlight.run('rse:other', '1-0', () => outside.promise);
    dispatcher.push(P0.stream, [entry('e1')]);
    expect(hooks.started).toEqual([]);
    expect(dispatcher.queued).toBe(1);
    outside.resolve();
    await until(() => hooks.started.includes('e1'), 'e1 to start once the slot is free');
    expect(dispatcher.queued).toBe(0);
  });

  it('ignores a second add() of a partition it already dispatches', () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' })]);
    dispatcher.add(P0);
    expect(dispatcher.has(P0.stream)).toBe(true);
    expect(dispatcher.queued).toBe(1);
    expect(hooks.started).toEqual(['a1']);
  });

  it('drops entries pushed for a partition it does not dispatch', () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P1.stream, [entry('x', {}, P1.stream)]);
    expect(hooks.started).toEqual([]);
    expect(dispatcher.queued).toBe(0);
    expect(dispatcher.has(P1.stream)).toBe(false);
  });
});

describe('OrderedDispatcher: control entries', () => {
  it('runs a control entry only when it is first and nothing of its partition runs; later entries wait for it', async () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('e1'), entry('e2'), entry('c', { 'rse.control': 'epoch', epoch: '1' }), entry('e3')]);
    expect(hooks.started).toEqual(['e1', 'e2']);

    hooks.finish('e1');
    await until(() => hooks.finished.includes('e1'), 'e1 to finish');
    await turns();
    expect(hooks.controls).toEqual([]); // e2 still runs
    expect(hooks.started).toEqual(['e1', 'e2']);

    hooks.finish('e2');
    await until(() => hooks.controls.includes('c'), 'the control entry to run');
    await turns();
    expect(hooks.started).toEqual(['e1', 'e2', 'c']);
    expect(hooks.flags.has('c')).toBe(false); // handed to control(), not process()

    hooks.finish('c');
    await until(() => hooks.started.includes('e3'), 'e3 to start after the control entry');
    expect(hooks.started).toEqual(['e1', 'e2', 'c', 'e3']);
  });

  it('waits while an earlier entry of a busy lane is still queued before it', async () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' }), entry('c', { 'rse.control': 'epoch' }), entry('n1'), entry('b1', { lane: 'b' })]);
    // a2 waits for lane a, so the control entry is not first: it and everything after it wait.
    expect(hooks.started).toEqual(['a1']);
    hooks.finish('a1');
    await until(() => hooks.started.includes('a2'), 'a2 to start');
    await turns();
    expect(hooks.controls).toEqual([]);
    hooks.finish('a2');
    await until(() => hooks.controls.length === 1, 'the control entry');
    hooks.finish('c');
    await until(() => hooks.started.length === 5, 'the entries after the control entry');
    expect(hooks.started).toEqual(['a1', 'a2', 'c', 'n1', 'b1']);
  });

  it('runs a control entry at once when its partition is idle, and does not consult the lane rule for it', () => {
    const laneOf = (stream: string, e: DeliveredEntry): string | null => {
      if (e.fields['rse.control'] !== undefined) throw new Error('laneOf called for a control entry');
      return stream;
    };
    const { dispatcher, hooks } = setup({ lanes: { laneOf } });
    dispatcher.push(P0.stream, [entry('c', { 'rse.control': 'epoch', epoch: '3' })]);
    expect(hooks.controls).toEqual(['c']);
    expect(hooks.partitionsSeen.get('c')).toMatchObject(P0);
  });

  it('holds only its own partition', () => {
    const { dispatcher, hooks } = setup({ partitions: [P0, P1] });
    dispatcher.push(P0.stream, [entry('e1'), entry('c', { 'rse.control': 'epoch' }), entry('e2')]);
    dispatcher.push(P1.stream, [entry('p1-e1', {}, P1.stream)]);
    expect(hooks.started).toEqual(['e1', 'p1-e1']);
  });

  it('keeps later entries waiting while the control entry runs, even when more entries arrive', async () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('c', { 'rse.control': 'epoch' }), entry('e1')]);
    expect(hooks.started).toEqual(['c']);
    dispatcher.push(P0.stream, [entry('e2')]); // the reading loop delivers more while the control entry runs
    await turns();
    expect(hooks.started).toEqual(['c']);
    hooks.finish('c');
    await until(() => hooks.started.length === 3, 'e1 and e2 after the control entry');
  });
});

describe('OrderedDispatcher: layout epochs', () => {
  it('holds an entry of a newer epoch, and every entry after it, until the parents are drained', async () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('old'), entry('new1', { epoch: '1' }), entry('after'), entry('new2', { epoch: '1', lane: 'x' })]);
    expect(hooks.started).toEqual(['old']);
    await until(() => hooks.parentsCalls.length >= 1, 'parentsDrained to be asked');
    expect(hooks.parentsCalls[0].epoch).toBe(1);
    expect(hooks.parentsCalls[0].partition).toMatchObject(P0);

    // Not drained: asked again later, meanwhile nothing after the epoch change runs.
    await until(() => hooks.parentsCalls.length >= 2, 'parentsDrained to be asked again');
    expect(hooks.started).toEqual(['old']);
    expect(dispatcher.queued).toBe(3);

    hooks.parents = () => true;
    await until(() => hooks.started.length === 4, 'the new-epoch entries to run');
    expect(hooks.started).toEqual(['old', 'new1', 'after', 'new2']);
    expect(hooks.parentsCalls.every((c) => c.epoch === 1)).toBe(true);
  });

  it('asks once at a time, remembers a drained epoch, and asks again for a later one', async () => {
    const { dispatcher, hooks } = setup();
    const answer = deferred<boolean>();
    hooks.parents = () => answer.promise;
    dispatcher.push(P0.stream, [entry('e1', { epoch: '1' })]);
    dispatcher.push(P0.stream, [entry('e2', { epoch: '1' })]);
    await until(() => hooks.parentsCalls.length === 1, 'the first question');
    dispatcher.push(P0.stream, [entry('e3', { epoch: '1' })]);
    await turns();
    expect(hooks.parentsCalls).toHaveLength(1);
    expect(hooks.started).toEqual([]);

    answer.resolve(true);
    await until(() => hooks.started.length === 3, 'the epoch 1 entries');
    hooks.parents = () => false;
    dispatcher.push(P0.stream, [entry('e4', { epoch: '1' }), entry('e5', { epoch: '0' })]);
    expect(hooks.started).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    expect(hooks.parentsCalls).toHaveLength(1);

    dispatcher.push(P0.stream, [entry('f1', { epoch: '2' })]);
    await until(() => hooks.parentsCalls.length === 2, 'a question for epoch 2');
    expect(hooks.parentsCalls[1].epoch).toBe(2);
    expect(hooks.started).not.toContain('f1');
  });

  it('treats a failing parentsDrained as not drained and asks again', async () => {
    const { dispatcher, hooks } = setup();
    hooks.parents = () => Promise.reject(new Error('Redis unreachable'));
    dispatcher.push(P0.stream, [entry('e1', { epoch: '2' })]);
    await until(() => hooks.parentsCalls.length >= 2, 'a second question after the failure');
    expect(hooks.started).toEqual([]);
    hooks.parents = () => true;
    await until(() => hooks.started.includes('e1'), 'e1 once the parents are drained');
  });

  it('does not hold other partitions while one waits for its parents', () => {
    const { dispatcher, hooks } = setup({ partitions: [P0, P1] });
    dispatcher.push(P0.stream, [entry('p0-e1', { epoch: '1' })]);
    dispatcher.push(P1.stream, [entry('p1-e1', {}, P1.stream), entry('p1-e2', { epoch: '0' }, P1.stream)]);
    expect(hooks.started).toEqual(['p1-e1', 'p1-e2']);
  });
});

describe('OrderedDispatcher: causal dependencies', () => {
  it('holds an entry until its dependencies are done while other entries pass it', async () => {
    const { dispatcher, hooks } = setup();
    const answer = deferred<boolean>();
    hooks.dependencies = () => answer.promise;
    dispatcher.push(P0.stream, [entry('c1', { deps: JSON.stringify(['order-1', 'order-2']) }), entry('n1'), entry('n2')]);
    expect(hooks.started).toEqual(['n1', 'n2']);
    expect(hooks.dependencyCalls).toEqual([['order-1', 'order-2']]);

    answer.resolve(true);
    await until(() => hooks.started.includes('c1'), 'c1 once its dependencies are done');
    expect(hooks.flags.get('c1')).toEqual({ causalTimedOut: false });
    expect(dispatcher.queued).toBe(0);
  });

  it('keeps later entries of the waiting entry’s lane behind it, not those of other lanes', async () => {
    const { dispatcher, hooks } = setup();
    const answer = deferred<boolean>();
    hooks.dependencies = () => answer.promise;
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a', deps: '["x"]' }), entry('a2', { lane: 'a' }), entry('b1', { lane: 'b' })]);
    expect(hooks.started).toEqual(['b1']);

    answer.resolve(true);
    await until(() => hooks.started.includes('a1'), 'a1');
    await turns();
    expect(hooks.started).toEqual(['b1', 'a1']);
    hooks.finish('a1');
    await until(() => hooks.started.includes('a2'), 'a2 after a1');
  });

  it('checks again (at most every 100 ms of its clock) until the dependencies are done', async () => {
    const { dispatcher, hooks, clock } = setup();
    dispatcher.push(P0.stream, [entry('c1', { deps: '["x"]' })]);
    expect(hooks.dependencyCalls).toHaveLength(1);

    clock.now += 100;
    await until(() => hooks.dependencyCalls.length === 2, 'a second check');
    expect(hooks.started).toEqual([]);

    hooks.dependencies = (deps) => deps.includes('x');
    clock.now += 100;
    await until(() => hooks.started.includes('c1'), 'c1 after its dependency is done');
    expect(hooks.flags.get('c1')).toEqual({ causalTimedOut: false });
  });

  it('runs one check per entry at a time and re-checks only once its clock moved on', async () => {
    const { dispatcher, hooks, clock } = setup({ partitions: [P0, P1] });
    const never = deferred<boolean>();
    hooks.dependencies = (deps) => (deps.includes('slow') ? never.promise : false);
    dispatcher.push(P0.stream, [entry('c1', { deps: '["slow"]' })]);
    clock.now += 50;
    dispatcher.push(P1.stream, [entry('c2', { deps: '["fast"]' }, P1.stream)]);
    expect(hooks.callsFor('slow')).toBe(1);
    expect(hooks.callsFor('fast')).toBe(1);

    clock.now += 110; // 160 ms after c1's check, 110 ms after c2's: the next re-check asks for c2 again
    await until(() => hooks.callsFor('fast') === 2, 'c2 to be checked again');
    // c1's check is still pending: no second one for it, although its clock moved on by 160 ms.
    expect(hooks.callsFor('slow')).toBe(1);
    expect(hooks.started).toEqual([]);
  });

  it('hands the entry over with causalTimedOut after causalTimeoutMs of its clock', async () => {
    const { dispatcher, hooks, clock } = setup({ causalTimeoutMs: 5_000 });
    const since = clock.now;
    dispatcher.push(P0.stream, [entry('c1', { lane: 'a', deps: '["missing"]' }), entry('a2', { lane: 'a' })]);

    clock.now = since + 4_999;
    await until(() => hooks.dependencyCalls.length === 2, 'a check just before the timeout');
    expect(hooks.started).toEqual([]);

    clock.now = since + 5_000;
    await until(() => hooks.started.includes('c1'), 'c1 at its causal timeout');
    expect(hooks.flags.get('c1')).toEqual({ causalTimedOut: true });
    await turns();
    expect(hooks.started).toEqual(['c1']); // a2 still waits behind c1 in lane a
    hooks.finish('c1');
    await until(() => hooks.started.includes('a2'), 'a2 after c1');
    expect(hooks.flags.get('a2')).toEqual({ causalTimedOut: false });
  });

  it('treats a failing dependenciesDone as not done and checks again', async () => {
    const { dispatcher, hooks, clock } = setup();
    hooks.dependencies = () => Promise.reject(new Error('Redis unreachable'));
    dispatcher.push(P0.stream, [entry('c1', { deps: '["x"]' })]);
    hooks.dependencies = () => true;
    clock.now += 100;
    await until(() => hooks.started.includes('c1'), 'c1 after a successful check');
    expect(hooks.dependencyCalls).toHaveLength(2);
    expect(hooks.flags.get('c1')).toEqual({ causalTimedOut: false });
  });

  it('lets an entry with malformed deps through without waiting for the timeout (the processor dead-letters it)', async () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('bad', { deps: '{not json' })]);
    expect(hooks.dependencyCalls).toEqual([[]]);
    await until(() => hooks.started.includes('bad'), 'the malformed entry to be handed over');
    expect(hooks.flags.get('bad')).toEqual({ causalTimedOut: false });
  });
});

describe('OrderedDispatcher: remove()', () => {
  it('drops queued entries and resolves only after the running ones finished', async () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' }), entry('n1')]);
    expect(hooks.started).toEqual(['a1', 'n1']);

    let removed = false;
    const removal = dispatcher.remove(P0.stream).then(() => {
      removed = true;
    });
    expect(dispatcher.has(P0.stream)).toBe(false);
    expect(dispatcher.queued).toBe(0);
    expect(dispatcher.room(P0.stream)).toBe(0);
    expect(dispatcher.readable()).toEqual([]);

    hooks.finish('a1');
    await until(() => hooks.finished.includes('a1'), 'a1 to finish');
    await turns();
    expect(removed).toBe(false); // n1 still runs
    expect(hooks.started).toEqual(['a1', 'n1']); // a2 was dropped

    hooks.finish('n1');
    await removal;
    expect(removed).toBe(true);
    expect(hooks.started).toEqual(['a1', 'n1']);
  });

  it('resolves at once when nothing of the partition runs, or when it is unknown', async () => {
    const { dispatcher } = setup();
    await expect(dispatcher.remove(P0.stream)).resolves.toBeUndefined();
    await expect(dispatcher.remove('rse:unknown')).resolves.toBeUndefined();
  });

  it('ignores entries pushed after the removal (they stay pending for the next owner)', async () => {
    const { dispatcher, hooks } = setup();
    await dispatcher.remove(P0.stream);
    dispatcher.push(P0.stream, [entry('late')]);
    expect(hooks.started).toEqual([]);
    expect(dispatcher.queued).toBe(0);
  });

  it('stops the causal checks of the dropped entries', async () => {
    const { dispatcher, hooks, clock } = setup({ partitions: [P0, P1] });
    dispatcher.push(P0.stream, [entry('c0', { deps: '["dropped"]' })]);
    dispatcher.push(P1.stream, [entry('c1', { deps: '["kept"]' }, P1.stream)]);
    await dispatcher.remove(P0.stream);
    clock.now += 100;
    await until(() => hooks.callsFor('kept') === 2, 'the kept partition to be checked again');
    expect(hooks.callsFor('dropped')).toBe(1);
  });

  it('wakes whenRoom() waiters', async () => {
    const { dispatcher } = setup();
    const woke = dispatcher.whenRoom(60_000);
    void dispatcher.remove(P0.stream);
    await expect(woke).resolves.toBeUndefined();
  });

  it('starts entries of a re-added partition once a handler of its removed predecessor freed their lane', async () => {
    const { dispatcher, hooks } = setup();
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' })]);
    const removal = dispatcher.remove(P0.stream);
    dispatcher.add(P0); // the partition comes back to this consumer while a1 still runs
    dispatcher.push(P0.stream, [entry('a2', { lane: 'a' })]);
    expect(hooks.started).toEqual(['a1']); // lane a is still held by a1
    hooks.finish('a1');
    await removal;
    await until(() => hooks.started.includes('a2'), 'a2 once lane a is free', 500);
  });
});

describe('OrderedDispatcher: queue limit', () => {
  it('reports room against queueLimit, and a partition as readable only once half its queue is free', async () => {
    const { dispatcher, hooks } = setup({ queueLimit: 4, readWhenHalfFree: true, partitions: [P0, P1] });
    expect(dispatcher.room(P0.stream)).toBe(4);
    expect(dispatcher.readRoom(P0.stream)).toBe(4);
    expect(dispatcher.readable()).toEqual([P0.stream, P1.stream]);

    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' }), entry('a3', { lane: 'a' })]);
    expect(dispatcher.room(P0.stream)).toBe(2); // a1 runs, two wait
    expect(dispatcher.readRoom(P0.stream)).toBe(2);
    expect(dispatcher.readable()).toEqual([P0.stream, P1.stream]);

    dispatcher.push(P0.stream, [entry('a4', { lane: 'a' })]);
    expect(dispatcher.room(P0.stream)).toBe(1);
    expect(dispatcher.readRoom(P0.stream)).toBe(0); // not worth a read: less than half the queue is free
    expect(dispatcher.readable()).toEqual([P1.stream]);

    dispatcher.push(P0.stream, [entry('a5', { lane: 'a' }), entry('a6', { lane: 'a' })]); // more than asked for
    expect(dispatcher.room(P0.stream)).toBe(0);
    expect(dispatcher.queued).toBe(5);

    hooks.finish('a1');
    await until(() => hooks.started.includes('a2'), 'a2');
    expect(dispatcher.room(P0.stream)).toBe(0);
    hooks.finish('a2');
    await until(() => hooks.started.includes('a3'), 'a3');
    expect(dispatcher.room(P0.stream)).toBe(1);
    expect(dispatcher.readable()).toEqual([P1.stream]);
    hooks.finish('a3');
    await until(() => hooks.started.includes('a4'), 'a4');
    expect(dispatcher.room(P0.stream)).toBe(2);
    expect(dispatcher.readRoom(P0.stream)).toBe(2);
    expect(dispatcher.readable()).toEqual([P0.stream, P1.stream]);
    expect(dispatcher.room(P1.stream)).toBe(4);
    expect(dispatcher.room('rse:unknown')).toBe(0);
    expect(dispatcher.readRoom('rse:unknown')).toBe(0);
  });

  it('without readWhenHalfFree (lanes per key), any free queue place is worth a read', () => {
    const { dispatcher } = setup({ queueLimit: 4, partitions: [P0] });
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' }), entry('a3', { lane: 'a' }), entry('a4', { lane: 'a' })]);
    expect(dispatcher.room(P0.stream)).toBe(1); // a1 runs, three wait
    expect(dispatcher.readRoom(P0.stream)).toBe(1);
    expect(dispatcher.readable()).toEqual([P0.stream]);
  });

  it('whenRoom() resolves once a full partition has room again', async () => {
    const { dispatcher, hooks } = setup({ queueLimit: 2 });
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' }), entry('a3', { lane: 'a' })]);
    expect(dispatcher.readable()).toEqual([]);
    let woke = false;
    const waiting = dispatcher.whenRoom(60_000).then(() => {
      woke = true;
    });
    await turns();
    expect(woke).toBe(false);
    hooks.finish('a1');
    await waiting;
    expect(dispatcher.room(P0.stream)).toBe(1);
  });

  it('whenRoom() resolves after its timeout when nothing changes', async () => {
    const { dispatcher } = setup({ queueLimit: 1 });
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' })]);
    await expect(dispatcher.whenRoom(5)).resolves.toBeUndefined();
  });
  it('onRoomIn() tells when a partition left out of reads (full) has room, not when one already read has', async () => {
    // The reader blocks on the partitions with room and must end that read as soon as a full one can take entries.
    const { dispatcher, hooks } = setup({ queueLimit: 2, partitions: [P0, P1] });
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' }), entry('a3', { lane: 'a' })]);
    dispatcher.push(P1.stream, [entry('b1', { lane: 'b' }, P1.stream)]);
    expect(dispatcher.full()).toEqual([P0.stream]);
    expect(dispatcher.readable()).toEqual([P1.stream]);
    let woken = 0;
    dispatcher.onRoomIn(dispatcher.full(), () => woken++);
    hooks.finish('b1'); // room in P1, which the read already covers
    await turns();
    expect(woken).toBe(0);
    hooks.finish('a1');
    await until(() => woken === 1, 'woken once P0 has room');
    expect(dispatcher.full()).toEqual([]);
    hooks.finish('a2');
    await until(() => hooks.started.includes('a3'), 'a3');
    expect(woken).toBe(1); // once

    const cancelled = dispatcher.onRoomIn([P0.stream], () => woken++);
    cancelled();
    hooks.finish('a3');
    await turns();
    expect(woken).toBe(1);
  });
});

describe('OrderedDispatcher: close()', () => {
  it('starts nothing after close, while running handlers finish normally', async () => {
    const { dispatcher, hooks, inFlight } = setup({ partitions: [P0, P1] });
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' }), entry('c', { 'rse.control': 'epoch' })]);
    dispatcher.push(P1.stream, [entry('p1-n1', {}, P1.stream)]);
    expect(hooks.started).toEqual(['a1', 'p1-n1']);

    dispatcher.close();
    dispatcher.push(P1.stream, [entry('p1-late', {}, P1.stream)]);
    expect(hooks.started).toEqual(['a1', 'p1-n1']);

    hooks.finish('a1');
    hooks.finish('p1-n1');
    expect(await inFlight.drain(1_000)).toBe(0);
    await turns();
    expect(hooks.finished).toEqual(['a1', 'p1-n1']);
    expect(hooks.started).toEqual(['a1', 'p1-n1']);
  });

  it('starts nothing when a pending gate opens after close', async () => {
    const { dispatcher, hooks, inFlight } = setup({ limit: 1 });
    const parents = deferred<boolean>();
    const dependencies = deferred<boolean>();
    hooks.parents = () => parents.promise;
    hooks.dependencies = () => dependencies.promise;
    const outside = deferred();
    dispatcher.push(P0.stream, [entry('c1', { deps: '["x"]' }), entry('e1', { epoch: '1' })]);
    await until(() => hooks.parentsCalls.length === 1, 'the epoch question');
    expect(hooks.dependencyCalls).toHaveLength(1);

    dispatcher.close();
    parents.resolve(true);
    dependencies.resolve(true);
    await turns();
    expect(hooks.started).toEqual([]);

    // A freed slot does not restart dispatching either.
    inFlight.run('rse:other', '1-0', () => outside.promise);
    outside.resolve();
    await inFlight.drain(1_000);
    await turns();
    expect(hooks.started).toEqual([]);
  });

  it('wakes whenRoom() waiters', async () => {
    const { dispatcher } = setup({ queueLimit: 1 });
    dispatcher.push(P0.stream, [entry('a1', { lane: 'a' }), entry('a2', { lane: 'a' })]);
    const woke = dispatcher.whenRoom(60_000);
    dispatcher.close();
    await expect(woke).resolves.toBeUndefined();
  });
});
