import 'reflect-metadata';
import { ValidateNested } from 'class-validator';
import { Type } from 'class-transformer';
import { ConnectionOptions } from './connection.options.js';
import { StreamsOptions } from './streams.options.js';
import { ConsumerOptions } from './consumer.options.js';
import { BackoffOptions, DeadLetterOptions, RetryOptions } from './retry.options.js';
import { ClientOptions } from './client.options.js';
import { ExactlyOnceOptions, OrderingOptions, PartitioningOptions, ReplayOptions, SchemaOptions } from './features.options.js';
import { MetricsOptions, ObservabilityOptions, TracingOptions } from './observability.options.js';
import { CompressionOptions, EncryptionKeyOptions, EncryptionOptions } from './payload-codec.options.js';
import { MirrorOptions, MirrorSourceOptions, ReplicationOptions } from './replication.options.js';
import { AuditOptions, ComplianceOptions } from './compliance.options.js';

/** The complete, validated configuration. Every field has a default; see each section's class. */
export class RedisStreamsEnterpriseOptions {
  @ValidateNested() @Type(() => ConnectionOptions) connection: ConnectionOptions = new ConnectionOptions();
  @ValidateNested() @Type(() => StreamsOptions) streams: StreamsOptions = new StreamsOptions();
  @ValidateNested() @Type(() => ConsumerOptions) consumer: ConsumerOptions = new ConsumerOptions();
  @ValidateNested() @Type(() => RetryOptions) retry: RetryOptions = new RetryOptions();
  @ValidateNested() @Type(() => DeadLetterOptions) deadLetter: DeadLetterOptions = new DeadLetterOptions();
  @ValidateNested() @Type(() => ClientOptions) client: ClientOptions = new ClientOptions();
  @ValidateNested() @Type(() => OrderingOptions) ordering: OrderingOptions = new OrderingOptions();
  @ValidateNested() @Type(() => PartitioningOptions) partitioning: PartitioningOptions = new PartitioningOptions();
  @ValidateNested() @Type(() => SchemaOptions) schema: SchemaOptions = new SchemaOptions();
  @ValidateNested() @Type(() => ReplayOptions) replay: ReplayOptions = new ReplayOptions();
  @ValidateNested() @Type(() => ExactlyOnceOptions) exactlyOnce: ExactlyOnceOptions = new ExactlyOnceOptions();
  @ValidateNested() @Type(() => ObservabilityOptions) observability: ObservabilityOptions = new ObservabilityOptions();
  @ValidateNested() @Type(() => EncryptionOptions) encryption: EncryptionOptions = new EncryptionOptions();
  @ValidateNested() @Type(() => CompressionOptions) compression: CompressionOptions = new CompressionOptions();
  @ValidateNested() @Type(() => ComplianceOptions) compliance: ComplianceOptions = new ComplianceOptions();
  @ValidateNested() @Type(() => ReplicationOptions) replication: ReplicationOptions = new ReplicationOptions();
}

type Fields<T> = { [K in keyof T as T[K] extends (...args: never[]) => unknown ? never : K]?: T[K] };

/**
 * Configuration as users write it: every section and field optional, defaults filled in by validation.
 * Passed to `RedisStreamsEnterpriseModule.forRoot`, `new RedisStreamsServer(config)` and `new RedisStreamsClient(config)`.
 */
export interface RedisStreamsEnterpriseConfig {
  connection?: Fields<ConnectionOptions>;
  streams?: Fields<StreamsOptions>;
  consumer?: Fields<ConsumerOptions>;
  retry?: Omit<Fields<RetryOptions>, 'backoff'> & { backoff?: Fields<BackoffOptions> };
  deadLetter?: Fields<DeadLetterOptions>;
  client?: Fields<ClientOptions>;
  ordering?: Fields<OrderingOptions>;
  partitioning?: Fields<PartitioningOptions> & Pick<PartitioningOptions, 'partitionKeyExtractor'>;
  schema?: Fields<SchemaOptions>;
  replay?: Fields<ReplayOptions>;
  exactlyOnce?: Fields<ExactlyOnceOptions>;
  observability?: { tracing?: Fields<TracingOptions>; metrics?: Fields<MetricsOptions> };
  encryption?: Omit<Fields<EncryptionOptions>, 'keys'> & { keys?: Fields<EncryptionKeyOptions>[] };
  compression?: Fields<CompressionOptions>;
  compliance?: Omit<Fields<ComplianceOptions>, 'audit'> & { audit?: Fields<AuditOptions> };
  replication?: {
    region?: string;
    mirrors?: (Omit<Fields<MirrorOptions>, 'source'> & { source: Omit<Fields<MirrorSourceOptions>, 'connection'> & { connection?: Fields<ConnectionOptions> } })[];
  };
}

/** The validated, frozen configuration that every part of the library reads. */
export type ResolvedRedisStreamsConfig = Readonly<RedisStreamsEnterpriseOptions>;
