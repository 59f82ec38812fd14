import type { PartitioningManager, PartitionRoute } from '../partitioning/partitioning.manager.js';
import { PartitionedPublisher } from './partitioned-publisher.js';
import type { PublishOutcome } from './entry-publisher.js';

/**
 * A topic whose layout moves from epoch 1 to epoch 2 while messages are emitted. The partition refuses writes
 * routed by epoch 1 once it was closed (as the publish script does), and the order of accepted writes is recorded.
 */
class Topic {
  epoch = 1;
  closed = false;
  /** Cached route epoch; `route()` (which reads Redis) returns the current one after a tick. */
  cachedEpoch: number | undefined = 1;
  /** route() calls still answered with the old layout (a layout request sent before the change). */
  staleLoads = 0;
  readonly written: string[] = [];

  manager(): PartitioningManager {
    const routeOf = (epoch: number): PartitionRoute => ({ stream: 's#0', partition: 0, epoch, key: 'k' }) as PartitionRoute;
    return {
      routeCachedToSend: () => (this.cachedEpoch === undefined ? undefined : routeOf(this.cachedEpoch)),
      routeToSend: async () => {
        await new Promise((resolve) => setImmediate(resolve));
        const epoch = this.staleLoads-- > 0 ? 1 : this.epoch;
        this.cachedEpoch = epoch;
        return routeOf(epoch);
      },
      invalidate: () => (this.cachedEpoch = undefined),
    } as unknown as PartitioningManager;
  }

  send(name: string) {
    return async (route: PartitionRoute): Promise<PublishOutcome> => {
      await new Promise((resolve) => setImmediate(resolve));
      if (this.closed && route.epoch < this.epoch) return { status: 'stale', id: '' };
      this.written.push(name);
      return { status: 'ok', id: name };
    };
  }
}

describe('PartitionedPublisher: emit order across a change of layout', () => {
  it('a message routed from the cache before an earlier one saw the new layout is routed again, not overtaken', async () => {
    const topic = new Topic();
    const publisher = new PartitionedPublisher(topic.manager());
    // The layout changes; the first emit after it misses the cache and reads the new layout.
    topic.epoch = 2;
    topic.closed = true;
    topic.cachedEpoch = undefined;
    const first = publisher.publish('t', {}, {}, topic.send('z'));
    // Emitted right after, while the cache still says epoch 1 (route() above has not returned yet).
    topic.cachedEpoch = 1;
    const second = publisher.publish('t', {}, {}, topic.send('m38'));
    await new Promise((resolve) => setImmediate(resolve));
    const third = publisher.publish('t', {}, {}, topic.send('m39'));
    await Promise.all([first, second, third]);
    expect(topic.written).toEqual(['z', 'm38', 'm39']);
  });

  it('messages refused as stale are written again in their emit order, before later ones', async () => {
    const topic = new Topic();
    const publisher = new PartitionedPublisher(topic.manager());
    const sends = ['a', 'b'].map((name) => publisher.publish('t', {}, {}, topic.send(name)));
    topic.epoch = 2; // closed while a and b are on their way
    topic.closed = true;
    await new Promise((resolve) => setImmediate(resolve));
    const later = publisher.publish('t', {}, {}, topic.send('c'));
    await Promise.all([...sends, later]);
    expect(topic.written).toEqual(['a', 'b', 'c']);
  });

  it('the same when the first re-read of the layout still answers with the old one', async () => {
    const topic = new Topic();
    const publisher = new PartitionedPublisher(topic.manager());
    topic.epoch = 2;
    topic.closed = true;
    topic.cachedEpoch = undefined;
    const first = publisher.publish('t', {}, {}, topic.send('z'));
    topic.cachedEpoch = 1;
    const second = publisher.publish('t', {}, {}, topic.send('m38'));
    await new Promise((resolve) => setImmediate(resolve));
    topic.staleLoads = 1; // m38's first re-route reads a layout request sent before the change
    const third = publisher.publish('t', {}, {}, topic.send('m39'));
    await Promise.all([first, second, third]);
    expect(topic.written).toEqual(['z', 'm38', 'm39']);
  });

  it('a slow preparation (a schema lookup) of an earlier message holds the later ones back', async () => {
    const topic = new Topic();
    const publisher = new PartitionedPublisher(topic.manager());
    let lookupDone!: () => void;
    const slowLookup = new Promise<void>((resolve) => (lookupDone = resolve));
    const first = publisher.publish('t', {}, {}, topic.send('m8'), slowLookup);
    const second = publisher.publish('t', {}, {}, topic.send('m9'), Promise.resolve());
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(topic.written).toEqual([]);
    lookupDone();
    await Promise.all([first, second]);
    expect(topic.written).toEqual(['m8', 'm9']);
  });

  it('a failed preparation writes nothing and does not hold the later messages', async () => {
    const topic = new Topic();
    const publisher = new PartitionedPublisher(topic.manager());
    const refused = publisher.publish('t', {}, {}, topic.send('bad'), Promise.reject(new Error('invalid payload')));
    const next = publisher.publish('t', {}, {}, topic.send('good'));
    await expect(refused).rejects.toThrow('invalid payload');
    await next;
    expect(topic.written).toEqual(['good']);
  });
});
