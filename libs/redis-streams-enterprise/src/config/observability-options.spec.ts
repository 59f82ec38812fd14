import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { validateOptions } from './validate-options.js';

describe('observability options', () => {
  it('are off by default', () => {
    const { observability } = validateOptions({});
    expect(observability.tracing).toMatchObject({ enabled: false, traceRedisCommands: false });
    expect(observability.metrics).toMatchObject({ prometheus: false, openTelemetry: false, prefix: 'redis_streams_', maxPatternLabels: 100, gaugeCacheMs: 1_000 });
    expect(observability.metrics.registry).toBeUndefined();
  });

  it('keep the prom-client registry object as it is (not copied by validation)', () => {
    const registry = { registerMetric: () => undefined, getSingleMetric: () => undefined };
    const config = validateOptions({ observability: { metrics: { prometheus: true, registry } } });
    expect(config.observability.metrics.registry).toBe(registry);
    expect(Object.isFrozen(config.observability.metrics)).toBe(true);
  });

  it('refuse a registry that is not one, a bad prefix and unknown keys, all in one error', () => {
    let error: unknown;
    try {
      validateOptions({
        observability: {
          metrics: { registry: 'default' as never, prefix: '9bad-prefix', maxPatternLabels: 0 },
          tracing: { enabled: true, sampled: true } as never,
        },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    const message = (error as Error).message;
    expect(message).toContain('observability.metrics.registry must be a prom-client Registry');
    expect(message).toContain('observability.metrics.prefix');
    expect(message).toContain('observability.metrics.maxPatternLabels');
    expect(message).toContain('observability.tracing.sampled is not a known option');
  });
});
