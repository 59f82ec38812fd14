import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { validateOptions } from '../config/validate-options.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { OrderingManager } from './ordering.manager.js';

const S0 = 'rse:orders:p:0';
const S1 = 'rse:orders:p:1';

function entry(fields: Record<string, string> = {}, stream = S0): DeliveredEntry {
  return { id: '1-0', stream, deliveryCount: 1, fields: { data: '{}', ...fields } };
}

const manager = (config: RedisStreamsEnterpriseConfig): OrderingManager => new OrderingManager(validateOptions(config));

const BASE_LIMITS = [
  expect.stringContaining('holds up only its key (or partition)'),
  expect.stringContaining('at-least-once'),
  expect.stringContaining('failover'),
];
const NOT_EXACTLY_ONCE = expect.stringContaining('Without exactlyOnce.enabled');

describe('OrderingManager.laneOf', () => {
  it("'global': one lane per partition stream, whatever the key", () => {
    const ordering = manager({ ordering: { enabled: true, strategy: 'global' } });
    expect(ordering.strategy).toBe('global');
    expect(ordering.laneOf(S0, entry({ key: 'a' }))).toBe(S0);
    expect(ordering.laneOf(S0, entry({ key: 'b' }))).toBe(S0);
    expect(ordering.laneOf(S0, entry())).toBe(S0);
    expect(ordering.laneOf(S1, entry({}, S1))).toBe(S1);
  });

  it("'partition' without partitionKey: one lane per partition stream", () => {
    const ordering = manager({ ordering: { enabled: true, strategy: 'partition' }, partitioning: { enabled: true, partitionCount: 4 } });
    expect(ordering.laneOf(S0, entry({ key: 'a' }))).toBe(S0);
    expect(ordering.laneOf(S0, entry({ key: 'b' }))).toBe(S0);
    expect(ordering.laneOf(S1, entry({ key: 'a' }, S1))).toBe(S1);
  });

  it("'partition' with partitionKey: one lane per key within a partition", () => {
    const ordering = manager({ ordering: { enabled: true, strategy: 'partition', partitionKey: 'customerId' } });
    const a = ordering.laneOf(S0, entry({ key: 'customer-a' }));
    const aAgain = ordering.laneOf(S0, entry({ key: 'customer-a' }));
    const b = ordering.laneOf(S0, entry({ key: 'customer-b' }));
    const aElsewhere = ordering.laneOf(S1, entry({ key: 'customer-a' }, S1));
    expect(a).toBe(`${S0}\ncustomer-a`);
    expect(aAgain).toBe(a);
    expect(b).not.toBe(a);
    expect(aElsewhere).not.toBe(a);
    expect(a).not.toBe(S0); // not the whole-partition lane
  });

  it("'partition' with partitionKey: messages without a key share one lane of their partition", () => {
    const ordering = manager({ ordering: { enabled: true, strategy: 'partition', partitionKey: 'customerId' } });
    const keyless = ordering.laneOf(S0, entry());
    expect(keyless).toBe(`${S0}\n`);
    expect(ordering.laneOf(S0, entry())).toBe(keyless);
    expect(ordering.laneOf(S0, entry({ key: '' }))).toBe(keyless);
    expect(ordering.laneOf(S1, entry({}, S1))).not.toBe(keyless);
  });

  it("'causal' and 'none': no lane (ordering comes from dependencies, or there is none)", () => {
    const causal = manager({ ordering: { enabled: true, strategy: 'causal' } });
    const none = manager({ ordering: { enabled: true, strategy: 'none' } });
    expect(causal.laneOf(S0, entry({ key: 'a', deps: '["x"]' }))).toBeNull();
    expect(none.laneOf(S0, entry({ key: 'a' }))).toBeNull();
    expect(none.strategy).toBe('none');
  });

  it('no lane while ordering is disabled, whatever strategy is configured', () => {
    for (const strategy of ['global', 'partition', 'causal', 'none'] as const) {
      const ordering = manager({ ordering: { enabled: false, strategy, partitionKey: 'customerId' } });
      expect(ordering.strategy).toBe('none');
      expect(ordering.laneOf(S0, entry({ key: 'a' }))).toBeNull();
    }
    expect(manager({}).laneOf(S0, entry({ key: 'a' }))).toBeNull();
  });
});

describe('OrderingManager.maxConcurrency', () => {
  it('is ordering.maxConcurrency with ordering enabled, else consumer.concurrency', () => {
    expect(manager({ ordering: { enabled: true, strategy: 'partition', maxConcurrency: 7 }, consumer: { concurrency: 50, batchSize: 16 } }).maxConcurrency).toBe(7);
    expect(manager({ ordering: { enabled: false, maxConcurrency: 7 }, consumer: { concurrency: 50, batchSize: 16 } }).maxConcurrency).toBe(50);
  });
});

describe('OrderingManager.getOrderingGuarantees', () => {
  it('defaults (ordering and partitioning off): nothing ordered, at-least-once', () => {
    const config = validateOptions({});
    expect(new OrderingManager(config).getOrderingGuarantees()).toEqual({
      strategy: 'none',
      scope: 'none',
      orderingKey: null,
      maxConcurrency: config.consumer.concurrency,
      partitions: 1,
      singleOwnerPerPartition: false,
      retryAttempts: config.retry.attempts,
      delivery: 'at-least-once',
      idempotentPublishWindowMs: 86_400_000,
      limits: [...BASE_LIMITS, NOT_EXACTLY_ONCE],
    });
  });

  it("'partition' with a key on 8 partitions and exactly-once: per key, single owner, exactly-once for Redis effects", () => {
    const guarantees = manager({
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'customerId', maxConcurrency: 32, retryAttempts: 5 },
      partitioning: { enabled: true, partitionCount: 8 },
      retry: { attempts: 2 },
      exactlyOnce: { enabled: true, windowMs: 60_000 },
    }).getOrderingGuarantees();
    expect(guarantees).toEqual({
      strategy: 'partition',
      scope: 'key',
      orderingKey: 'customerId',
      maxConcurrency: 32,
      partitions: 8,
      singleOwnerPerPartition: true,
      retryAttempts: 5,
      delivery: 'exactly-once-for-redis-effects',
      idempotentPublishWindowMs: 60_000,
      limits: BASE_LIMITS,
    });
  });

  it("'partition' without a key and without partitioning: the whole (single) partition in order", () => {
    const guarantees = manager({ ordering: { enabled: true, strategy: 'partition', retryAttempts: 4 } }).getOrderingGuarantees();
    expect(guarantees).toMatchObject({
      strategy: 'partition',
      scope: 'partition',
      orderingKey: null,
      partitions: 1,
      singleOwnerPerPartition: true,
      retryAttempts: 4,
      maxConcurrency: 10,
    });
  });

  it("'global': the whole topic in order on one partition", () => {
    const guarantees = manager({
      ordering: { enabled: true, strategy: 'global', partitionKey: 'ignored', maxConcurrency: 3 },
      partitioning: { enabled: true, partitionCount: 1 },
    }).getOrderingGuarantees();
    expect(guarantees).toMatchObject({
      strategy: 'global',
      scope: 'topic',
      orderingKey: null,
      partitions: 1,
      singleOwnerPerPartition: true,
      maxConcurrency: 3,
    });
    expect(guarantees.limits).toEqual([...BASE_LIMITS, NOT_EXACTLY_ONCE]);
  });

  it("'causal' with deadLetter: dependencies first, and says what happens at the timeout", () => {
    const guarantees = manager({
      ordering: { enabled: true, strategy: 'causal', timeoutMs: 1_234, causalTimeoutPolicy: 'deadLetter' },
    }).getOrderingGuarantees();
    expect(guarantees).toMatchObject({ strategy: 'causal', scope: 'dependencies', orderingKey: null, singleOwnerPerPartition: true });
    expect(guarantees.limits).toContain('A message whose dependencies are not handled within 1234 ms is dead-lettered (reason causal-timeout).');
  });

  it("'causal' with process: the timed-out message is handled anyway", () => {
    const guarantees = manager({
      ordering: { enabled: true, strategy: 'causal', timeoutMs: 500, causalTimeoutPolicy: 'process' },
      exactlyOnce: { enabled: true },
    }).getOrderingGuarantees();
    expect(guarantees.limits).toEqual([...BASE_LIMITS, 'A message whose dependencies are not handled within 500 ms is handled anyway.']);
  });

  it('partitioning with roundRobin and ordering off: single owner per partition, only keyed messages keep their order', () => {
    const guarantees = manager({
      partitioning: { enabled: true, strategy: 'roundRobin', partitionCount: 6 },
      ordering: { enabled: false, retryAttempts: 9 },
      retry: { attempts: 2 },
      consumer: { concurrency: 40, batchSize: 16 },
    }).getOrderingGuarantees();
    expect(guarantees).toMatchObject({
      strategy: 'none',
      scope: 'none',
      partitions: 6,
      singleOwnerPerPartition: true,
      retryAttempts: 2, // ordering off: the ordinary retry policy
      maxConcurrency: 40,
    });
    expect(guarantees.limits).toContain('roundRobin spreads messages without a key over all partitions: only messages with a key keep their order.');
  });

  it('does not mention roundRobin when partitioning is off, even if configured', () => {
    const guarantees = manager({ partitioning: { enabled: false, strategy: 'roundRobin' } }).getOrderingGuarantees();
    expect(guarantees.limits.some((l) => l.includes('roundRobin'))).toBe(false);
    expect(guarantees.partitions).toBe(1);
  });

  it("ordering enabled with strategy 'none' and no partitioning: nothing partitioned, ordinary retries", () => {
    const guarantees = manager({ ordering: { enabled: true, strategy: 'none', retryAttempts: 8, maxConcurrency: 12 }, retry: { attempts: 2 } }).getOrderingGuarantees();
    expect(guarantees).toMatchObject({
      strategy: 'none',
      scope: 'none',
      singleOwnerPerPartition: false,
      retryAttempts: 2,
      maxConcurrency: 12,
      partitions: 1,
    });
  });

  it('reports a disabled strategy as none', () => {
    const guarantees = manager({ ordering: { enabled: false, strategy: 'global' } }).getOrderingGuarantees();
    expect(guarantees).toMatchObject({ strategy: 'none', scope: 'none', singleOwnerPerPartition: false });
  });
});

describe('OrderingManager configuration', () => {
  it('uses a resolved configuration as it is', () => {
    const config = validateOptions({ ordering: { enabled: true, strategy: 'causal' } });
    expect(new OrderingManager(config).config).toBe(config);
  });

  it('validates a raw configuration (and refuses an invalid one)', () => {
    expect(new OrderingManager({ ordering: { enabled: true, strategy: 'partition' } }).strategy).toBe('partition');
    expect(() => new OrderingManager({ ordering: { strategy: 'random' as never } })).toThrow(InvalidOptionsError);
  });
});
