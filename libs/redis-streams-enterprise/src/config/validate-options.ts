import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { loadTlsMaterial } from '../connection/redis-connection.factory.js';
import { InvalidOptionsError, type ConfigViolation } from '../errors/invalid-options.error.js';
import type { ConnectionOptions } from './connection.options.js';
import {
  RedisStreamsEnterpriseOptions,
  type RedisStreamsEnterpriseConfig,
  type ResolvedRedisStreamsConfig,
} from './redis-streams.options.js';
import { payloadCodecViolations } from './payload-codec.options.js';
import { replicationViolations } from './replication.options.js';
import { complianceViolations, freezeCompliance } from './compliance.options.js';

/** Result of `ConfigValidator.validateConfig`. */
export interface ConfigValidationResult {
  readonly valid: boolean;
  readonly errors: readonly ConfigViolation[];
  /** The resolved configuration (defaults applied) when `valid`. */
  readonly config?: ResolvedRedisStreamsConfig;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Members that are not data (an ioredis options object with functions or TLS buffers, user callbacks) are taken
 * out before class-transformer copies the rest, and put back unchanged after validation.
 */
function splitNonData(raw: Record<string, unknown>): {
  data: Record<string, unknown>;
  redisOptions: unknown;
  clusterOptions: unknown;
  partitionKeyExtractor: unknown;
  metricsRegistry: unknown;
  actor: unknown;
} {
  const data: Record<string, unknown> = { ...raw };
  let redisOptions: unknown;
  let clusterOptions: unknown;
  let partitionKeyExtractor: unknown;
  if (isPlainObject(raw.connection) && 'options' in raw.connection) {
    const { options, ...rest } = raw.connection;
    redisOptions = options;
    data.connection = { ...rest, ...(options === undefined ? {} : { options: {} }) };
  }
  const connection = data.connection;
  if (isPlainObject(connection) && isPlainObject(connection.cluster) && 'options' in connection.cluster) {
    const { options, ...rest } = connection.cluster;
    clusterOptions = options;
    data.connection = { ...connection, cluster: { ...rest, ...(options === undefined ? {} : { options: {} }) } };
  }
  if (isPlainObject(raw.partitioning) && 'partitionKeyExtractor' in raw.partitioning) {
    const { partitionKeyExtractor: extractor, ...rest } = raw.partitioning;
    partitionKeyExtractor = extractor;
    data.partitioning = rest;
  }
  const observability = raw.observability;
  let metricsRegistry: unknown;
  if (isPlainObject(observability) && isPlainObject(observability.metrics) && 'registry' in observability.metrics) {
    const { registry, ...rest } = observability.metrics;
    metricsRegistry = registry;
    data.observability = { ...observability, metrics: rest };
  }
  let actor: unknown;
  if (isPlainObject(raw.compliance) && typeof raw.compliance.actor === 'function') {
    const { actor: source, ...rest } = raw.compliance;
    actor = source;
    data.compliance = rest;
  }
  return { data, redisOptions, clusterOptions, partitionKeyExtractor, metricsRegistry, actor };
}

function toViolations(errors: ValidationError[], parentPath = ''): ConfigViolation[] {
  const out: ConfigViolation[] = [];
  for (const error of errors) {
    const path = parentPath ? `${parentPath}.${error.property}` : error.property;
    for (const [rule, text] of Object.entries(error.constraints ?? {})) {
      const sentence =
        rule === 'whitelistValidation'
          ? `${path} is not a known option (check for a typo)`
          : text.startsWith(`${error.property} `)
            ? `${path}${text.slice(error.property.length)}`
            : `${path} ${text}`;
      out.push({ path, rule, message: sentence });
    }
    if (error.children?.length) out.push(...toViolations(error.children, path));
  }
  return out;
}

function crossFieldViolations(config: RedisStreamsEnterpriseOptions, extractor: unknown): ConfigViolation[] {
  const out: ConfigViolation[] = [];
  const add = (path: string, rule: string, message: string) => out.push({ path, rule, message: `${path} ${message}` });
  const { consumer, partitioning, retry, streams, ordering } = config;
  if (consumer.handlerTimeoutMs > 0 && consumer.claimIdleMs <= consumer.handlerTimeoutMs) {
    add('consumer.claimIdleMs', 'greaterThanHandlerTimeout', 'must be greater than consumer.handlerTimeoutMs');
  }
  if (consumer.batchSize > consumer.concurrency) {
    add('consumer.batchSize', 'notAboveConcurrency', 'must not be greater than consumer.concurrency');
  }
  if (retry.backoff.maxDelayMs < retry.backoff.delayMs) {
    add('retry.backoff.maxDelayMs', 'notBelowDelay', 'must not be smaller than retry.backoff.delayMs');
  }
  if (partitioning.minPartitions > partitioning.maxPartitions) {
    add('partitioning.minPartitions', 'notAboveMax', 'must not be greater than partitioning.maxPartitions');
  }
  if (
    partitioning.partitionCount < partitioning.minPartitions ||
    partitioning.partitionCount > partitioning.maxPartitions
  ) {
    add('partitioning.partitionCount', 'withinMinMax', 'must lie between partitioning.minPartitions and maxPartitions');
  }
  if (ordering.enabled && ordering.strategy === 'global' && partitioning.enabled && partitioning.partitionCount > 1) {
    add(
      'ordering.strategy',
      'globalNeedsOnePartition',
      "'global' keeps one total order per topic, which needs a single partition: set partitioning.enabled false (or partitionCount 1), or use 'partition' ordering with a partitionKey to scale",
    );
  }
  if (ordering.enabled && ordering.strategy === 'global' && partitioning.enabled && partitioning.autoScaling) {
    add('partitioning.autoScaling', 'notWithGlobal', "must be false with ordering.strategy 'global' (one partition per topic)");
  }
  if (partitioning.autoScaling && partitioning.strategy !== 'dynamic') {
    add('partitioning.autoScaling', 'needsDynamic', "needs partitioning.strategy 'dynamic'");
  }
  if (extractor !== undefined && typeof extractor !== 'function') {
    add('partitioning.partitionKeyExtractor', 'isFunction', 'must be a function');
  }
  if (streams.maxLen !== undefined && streams.retentionMs !== undefined && streams.maxLen < 100) {
    add('streams.maxLen', 'min', 'must not be less than 100');
  }
  if (streams.trimming === 'hard' && streams.maxLen === undefined && streams.retentionMs === undefined) {
    add('streams.trimming', 'needsLimit', "'hard' needs streams.maxLen or streams.retentionMs (without them nothing is trimmed)");
  }
  return out;
}

/**
 * TLS rules: each PEM inline or from a file, not both; a client certificate with its key; no second `tls` in the
 * ioredis options; a `rediss://` URL for a single server (so the URL never reads as plain text while TLS is on); the
 * files readable and their PEMs usable (read here, at start, so a wrong path fails with the others).
 */
function tlsViolations(connection: ConnectionOptions, redisOptions: unknown, clusterOptions: unknown): ConfigViolation[] {
  const out: ConfigViolation[] = [];
  const add = (path: string, rule: string, message: string) => out.push({ path, rule, message: `${path} ${message}` });
  const tls = connection.tls;
  if (!tls) return out;
  for (const [inline, file] of [['ca', 'caFile'], ['cert', 'certFile'], ['key', 'keyFile']] as const) {
    if (tls[inline] !== undefined && tls[file] !== undefined) add(`connection.tls.${file}`, 'notWithInline', `must not be set together with connection.tls.${inline}`);
  }
  const hasCert = tls.cert !== undefined || tls.certFile !== undefined;
  const hasKey = tls.key !== undefined || tls.keyFile !== undefined;
  if (hasCert && !hasKey) add('connection.tls.key', 'neededWithCert', '(or keyFile) is needed with a client certificate');
  if (hasKey && !hasCert) add('connection.tls.cert', 'neededWithKey', '(or certFile) is needed with a private key');
  if (tls.passphrase !== undefined && !hasKey) add('connection.tls.passphrase', 'neededWithKey', 'needs connection.tls.key or keyFile');
  if (isPlainObject(redisOptions) && redisOptions.tls !== undefined) {
    add('connection.options.tls', 'notWithTls', 'must not be set together with connection.tls (set TLS in connection.tls only)');
  }
  if (isPlainObject(clusterOptions) && isPlainObject(clusterOptions.redisOptions) && clusterOptions.redisOptions.tls !== undefined) {
    add('connection.cluster.options.redisOptions.tls', 'notWithTls', 'must not be set together with connection.tls (set TLS in connection.tls only)');
  }
  if (!connection.cluster && !/^rediss:\/\//i.test(connection.url)) {
    add('connection.url', 'rediss', 'must be a rediss:// URL when connection.tls is set (redis:// would read as plain text)');
  }
  if (out.length === 0) {
    for (const problem of loadTlsMaterial(tls).problems) {
      const path = `connection.tls.${problem.field}`;
      out.push({ path, rule: 'tlsMaterial', message: problem.message });
    }
  }
  return out;
}

function freezeSections(config: RedisStreamsEnterpriseOptions): ResolvedRedisStreamsConfig {
  for (const section of Object.values(config)) {
    if (isPlainObject(section) || typeof section === 'object') Object.freeze(section);
  }
  Object.freeze(config.retry.backoff);
  if (config.consumer.patterns) Object.freeze(config.consumer.patterns);
  if (config.connection.tls) Object.freeze(config.connection.tls);
  Object.freeze(config.observability.tracing);
  Object.freeze(config.observability.metrics);
  for (const key of config.encryption.keys) Object.freeze(key);
  Object.freeze(config.encryption.keys);
  Object.freeze(config.encryption.encryptHeaders);
  freezeCompliance(config.compliance);
  return Object.freeze(config);
}

/** Validates a configuration and fills in defaults, without throwing. */
export function validateConfig(raw: RedisStreamsEnterpriseConfig | undefined): ConfigValidationResult {
  const input: unknown = raw ?? {};
  if (!isPlainObject(input)) {
    return {
      valid: false,
      errors: [{ path: '(root)', rule: 'isObject', message: '(root) configuration must be an object' }],
    };
  }
  const { data, redisOptions, clusterOptions, partitionKeyExtractor, metricsRegistry, actor } = splitNonData(input);
  const instance = plainToInstance(RedisStreamsEnterpriseOptions, data, { exposeDefaultValues: true });
  const errors = toViolations(validateSync(instance, { whitelist: true, forbidNonWhitelisted: true }));
  if (errors.length === 0) errors.push(...crossFieldViolations(instance, partitionKeyExtractor));
  if (metricsRegistry !== undefined && (!isPlainObject(metricsRegistry) || typeof metricsRegistry.registerMetric !== 'function')) {
    errors.push({ path: 'observability.metrics.registry', rule: 'isRegistry', message: 'observability.metrics.registry must be a prom-client Registry' });
  }
  if (errors.length === 0) errors.push(...tlsViolations(instance.connection, redisOptions, clusterOptions));
  if (errors.length === 0) errors.push(...payloadCodecViolations(instance.encryption));
  if (errors.length === 0) errors.push(...replicationViolations(instance.replication));
  if (errors.length === 0) errors.push(...complianceViolations(instance.compliance, actor));
  if (errors.length > 0) return { valid: false, errors };
  if (redisOptions !== undefined) instance.connection.options = redisOptions as never;
  if (clusterOptions !== undefined && instance.connection.cluster) instance.connection.cluster.options = clusterOptions as never;
  if (partitionKeyExtractor !== undefined) instance.partitioning.partitionKeyExtractor = partitionKeyExtractor as never;
  if (metricsRegistry !== undefined) instance.observability.metrics.registry = metricsRegistry as never;
  if (actor !== undefined) instance.compliance.actor = actor as never;
  return { valid: true, errors: [], config: freezeSections(instance) };
}

/**
 * Validates and resolves a configuration.
 * @throws InvalidOptionsError listing every violated rule with its field path.
 */
export function validateOptions(raw: RedisStreamsEnterpriseConfig | undefined): ResolvedRedisStreamsConfig {
  const result = validateConfig(raw);
  if (!result.valid || !result.config) throw new InvalidOptionsError(result.errors);
  return result.config;
}

/** A configuration resolved already (by the module) is used as it is; anything else is validated. */
export function resolveConfig(config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig | undefined): ResolvedRedisStreamsConfig {
  return config instanceof RedisStreamsEnterpriseOptions && Object.isFrozen(config)
    ? config
    : validateOptions(config as RedisStreamsEnterpriseConfig);
}

/** Configuration checks, as in the seed document: `ConfigValidator.validateConfig(config)`. */
export class ConfigValidator {
  /** Returns `{ valid, errors }`; each error names the field path and the rule. Never throws. */
  static validateConfig(config: RedisStreamsEnterpriseConfig | undefined): ConfigValidationResult {
    return validateConfig(config);
  }
}
