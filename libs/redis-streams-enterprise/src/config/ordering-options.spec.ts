import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import type { RedisStreamsEnterpriseConfig } from './redis-streams.options.js';
import { ConfigValidator, validateOptions } from './validate-options.js';

/** The InvalidOptionsError that `validateOptions` throws for `config` (fails the test if it does not throw). */
function rejection(config: RedisStreamsEnterpriseConfig): InvalidOptionsError {
  try {
    validateOptions(config);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error(`expected ${JSON.stringify(config)} to be rejected`);
}

describe('ordering and partitioning options', () => {
  describe("'global' ordering needs a single partition", () => {
    it('rejects it with partitioning.partitionCount > 1 and names the field', () => {
      const error = rejection({ ordering: { enabled: true, strategy: 'global' }, partitioning: { enabled: true, partitionCount: 4 } });
      expect(error.code).toBe('INVALID_OPTIONS');
      expect(error.violations).toEqual([expect.objectContaining({ path: 'ordering.strategy', rule: 'globalNeedsOnePartition' })]);
      expect(error.violations[0].message).toMatch(/^ordering\.strategy /);
      expect(error.violations[0].message).toContain('partitionCount 1');
      expect(error.message).toContain('ordering.strategy');
    });

    it('reports the same through ConfigValidator without throwing', () => {
      const result = ConfigValidator.validateConfig({ ordering: { enabled: true, strategy: 'global' }, partitioning: { enabled: true, partitionCount: 2 } });
      expect(result.valid).toBe(false);
      expect(result.config).toBeUndefined();
      expect(result.errors.map((e) => e.path)).toEqual(['ordering.strategy']);
    });

    it('accepts it with one partition, with partitioning off, or with ordering off', () => {
      expect(() => validateOptions({ ordering: { enabled: true, strategy: 'global' }, partitioning: { enabled: true, partitionCount: 1 } })).not.toThrow();
      // Partitioning off: topics have one partition whatever partitionCount (default 16) says.
      expect(() => validateOptions({ ordering: { enabled: true, strategy: 'global' }, partitioning: { enabled: false, partitionCount: 8 } })).not.toThrow();
      expect(() => validateOptions({ ordering: { enabled: false, strategy: 'global' }, partitioning: { enabled: true, partitionCount: 8 } })).not.toThrow();
      expect(() => validateOptions({ ordering: { enabled: true, strategy: 'partition' }, partitioning: { enabled: true, partitionCount: 8 } })).not.toThrow();
    });

    it('rejects autoScaling together with global ordering', () => {
      const error = rejection({
        ordering: { enabled: true, strategy: 'global' },
        partitioning: { enabled: true, strategy: 'dynamic', autoScaling: true, partitionCount: 1 },
      });
      expect(error.violations).toEqual([expect.objectContaining({ path: 'partitioning.autoScaling', rule: 'notWithGlobal' })]);
      expect(error.message).toContain('partitioning.autoScaling');
    });
  });

  describe("autoScaling needs partitioning.strategy 'dynamic'", () => {
    it.each(['hash', 'roundRobin', 'keyBased'] as const)('rejects autoScaling with strategy %s and names the field', (strategy) => {
      const error = rejection({ partitioning: { enabled: true, strategy, autoScaling: true } });
      expect(error.violations).toEqual([expect.objectContaining({ path: 'partitioning.autoScaling', rule: 'needsDynamic' })]);
      expect(error.violations[0].message).toBe("partitioning.autoScaling needs partitioning.strategy 'dynamic'");
      expect(error.message).toContain('partitioning.autoScaling');
    });

    it('rejects autoScaling with the default strategy (hash)', () => {
      expect(rejection({ partitioning: { enabled: true, autoScaling: true } }).violations.map((v) => v.path)).toEqual(['partitioning.autoScaling']);
    });

    it("accepts autoScaling with strategy 'dynamic'", () => {
      const config = validateOptions({ partitioning: { enabled: true, strategy: 'dynamic', autoScaling: true } });
      expect(config.partitioning).toMatchObject({ strategy: 'dynamic', autoScaling: true });
    });
  });

  it('lists every violation at once', () => {
    const error = rejection({
      ordering: { enabled: true, strategy: 'global' },
      partitioning: { enabled: true, strategy: 'hash', autoScaling: true, partitionCount: 4 },
    });
    expect(error.violations.map((v) => `${v.path}:${v.rule}`).sort()).toEqual([
      'ordering.strategy:globalNeedsOnePartition',
      'partitioning.autoScaling:needsDynamic',
      'partitioning.autoScaling:notWithGlobal',
    ]);
    expect(error.message).toContain('ordering.strategy');
    expect(error.message).toContain('partitioning.autoScaling');
  });
});
