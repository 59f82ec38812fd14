import { Module } from '@nestjs/common';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from './config/redis-streams.options.js';
import { validateOptions } from './config/validate-options.js';
import { REDIS_STREAMS_OPTIONS } from './redis-streams.constants.js';
import { ConfigurableModuleClass, REDIS_STREAMS_RAW_OPTIONS } from './redis-streams.module-definition.js';
import { RedisStreamsClient } from './transport/redis-streams.client.js';
import { RedisStreamsServer } from './transport/redis-streams.server.js';
import { DeadLetterManager } from './dead-letter/dead-letter.manager.js';
import { ReplayManager } from './replay/replay.manager.js';
import { ReplayHandlers } from './replay/replay-handlers.js';
import { ComplianceManager } from './compliance/compliance.manager.js';
import { StreamMirror } from './replication/stream-mirror.js';
import { SchemaManager } from './schema/schema.manager.js';
import { OrderingManager } from './ordering/ordering.manager.js';
import { PartitioningManager } from './partitioning/partitioning.manager.js';
import { createPartitioner, Partitioner } from './partitioning/partitioner.js';
import { SchemaRegistry } from './schema/schema-registry.js';
import { EncryptionKeyProvider } from './payload-codec/key-ring.js';

// With encryption.keyProvider 'external', the EncryptionKeyProvider the application provides (a global module, or
// forRootAsync({ imports })); missing, the server and client fail to start naming encryption.keyProvider.
const KEY_PROVIDER = { token: EncryptionKeyProvider, optional: true };

/**
 * Registers the validated configuration, the server and the client as providers.
 *
 * ```ts
 * @Module({ imports: [RedisStreamsEnterpriseModule.forRoot({ connection: { url: process.env.REDIS_URL } })] })
 * export class AppModule {}
 *
 * // async, e.g. from ConfigService:
 * RedisStreamsEnterpriseModule.forRootAsync({ imports: [ConfigModule], inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ connection: { url: config.get('REDIS_URL') } }), isGlobal: true })
 * ```
 * An invalid configuration fails the application's start with `InvalidOptionsError`, naming every bad field.
 */
@Module({
  providers: [
    {
      provide: REDIS_STREAMS_OPTIONS,
      inject: [REDIS_STREAMS_RAW_OPTIONS],
      useFactory: (raw: RedisStreamsEnterpriseConfig) => validateOptions(raw),
    },
    {
      // A custom Partitioner can replace the strategy's: provide the `Partitioner` token in the application.
      provide: Partitioner,
      inject: [REDIS_STREAMS_OPTIONS],
      useFactory: (config: ResolvedRedisStreamsConfig) => createPartitioner(config.partitioning),
    },
    {
      provide: OrderingManager,
      inject: [REDIS_STREAMS_OPTIONS],
      useFactory: (config: ResolvedRedisStreamsConfig) => new OrderingManager(config),
    },
    {
      provide: PartitioningManager,
      inject: [REDIS_STREAMS_OPTIONS, Partitioner],
      useFactory: (config: ResolvedRedisStreamsConfig, partitioner: Partitioner) => new PartitioningManager(config, partitioner),
    },
    {
      provide: RedisStreamsServer,
      inject: [REDIS_STREAMS_OPTIONS, Partitioner, OrderingManager, SchemaManager, KEY_PROVIDER],
      useFactory: (config: ResolvedRedisStreamsConfig, partitioner: Partitioner, ordering: OrderingManager, schemas: SchemaManager, keyProvider?: EncryptionKeyProvider) =>
        new RedisStreamsServer(config, { partitioner, ordering, schemas, keyProvider: keyProvider ?? undefined }),
    },
    {
      provide: RedisStreamsClient,
      inject: [REDIS_STREAMS_OPTIONS, Partitioner, SchemaManager, KEY_PROVIDER],
      useFactory: (config: ResolvedRedisStreamsConfig, partitioner: Partitioner, schemas: SchemaManager, keyProvider?: EncryptionKeyProvider) =>
        new RedisStreamsClient(config, partitioner, schemas, keyProvider ?? undefined),
    },
    {
      provide: DeadLetterManager,
      inject: [REDIS_STREAMS_OPTIONS],
      useFactory: (config: ResolvedRedisStreamsConfig) => new DeadLetterManager(config),
    },
    {
      provide: ReplayManager,
      // Replay reaches the handlers through ReplayHandlers, which the app's server implements.
      inject: [REDIS_STREAMS_OPTIONS, ReplayHandlers, KEY_PROVIDER],
      useFactory: (config: ResolvedRedisStreamsConfig, handlers: ReplayHandlers, keyProvider?: EncryptionKeyProvider) => new ReplayManager(config, handlers, keyProvider ?? undefined),
    },
    {
      provide: ComplianceManager,
      inject: [REDIS_STREAMS_OPTIONS, KEY_PROVIDER],
      useFactory: (config: ResolvedRedisStreamsConfig, keyProvider?: EncryptionKeyProvider) => new ComplianceManager(config, keyProvider ?? undefined),
    },
    {
      provide: ReplayHandlers,
      useExisting: RedisStreamsServer,
    },
    {
      // Starts the mirrors of replication.mirrors with the application (idle without any).
      provide: StreamMirror,
      inject: [REDIS_STREAMS_OPTIONS],
      useFactory: (config: ResolvedRedisStreamsConfig) => new StreamMirror(config),
    },
    {
      provide: SchemaManager,
      // With schema.registry 'external', the SchemaRegistry the application provides (a global module, or
      // forRootAsync({ imports })); missing, the application fails to start with SchemaRegistryMissingError.
      inject: [REDIS_STREAMS_OPTIONS, { token: SchemaRegistry, optional: true }],
      useFactory: (config: ResolvedRedisStreamsConfig, registry?: SchemaRegistry) => new SchemaManager(config, registry ?? undefined),
    },
  ],
  exports: [
    REDIS_STREAMS_OPTIONS,
    RedisStreamsServer,
    RedisStreamsClient,
    DeadLetterManager,
    ReplayManager,
    ComplianceManager,
    StreamMirror,
    SchemaManager,
    PartitioningManager,
    OrderingManager,
    Partitioner,
  ],
})
export class RedisStreamsEnterpriseModule extends ConfigurableModuleClass {}
