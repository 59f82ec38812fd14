/**
 * nestjs-redis-streams-enterprise: a NestJS transport over Redis Streams consumer groups.
 * Everything public is exported here by name; nothing else is part of the API.
 */
import 'reflect-metadata';

export { RedisStreamsEnterpriseModule } from './redis-streams.module.js';
export { type RedisStreamsModuleExtras } from './redis-streams.module-definition.js';
export { REDIS_STREAMS_OPTIONS, REDIS_STREAMS_TRANSPORT, RedisStreamsStatus } from './redis-streams.constants.js';

export { RedisStreamsServer, type RedisStreamsServerStatus, type StreamStatus } from './transport/redis-streams.server.js';
export { type ProbeVerdict } from './transport/server-health.js';
export { type LoopHealthReport } from './observability/loop-health.js';
export { type RedisPreflightReport } from './observability/redis-preflight.js';
export {
  RedisStreamsHealthIndicator,
  type RedisStreamsHealthResult,
  type RedisStreamsHealthCheckOptions,
} from './health/redis-streams.health-indicator.js';
export { type RedisStreamsReadinessThresholds } from './health/health-thresholds.js';
export { RedisStreamsConsoleModule } from './console/redis-streams-console.module.js';
export {
  REDIS_STREAMS_CONSOLE_WRITE,
  REDIS_STREAMS_CONSOLE_MIRROR,
  isConsoleWrite,
  type RedisStreamsConsoleOptions,
  type ConsoleRequest,
  type ConsoleMirrorSource,
  type ConsoleMirrorStatus,
} from './console/console.options.js';
export { type StreamRetentionStatus, type GroupRetentionStatus, type TrimmingMode } from './retention/retention-policy.js';
export { RedisStreamsClient } from './transport/redis-streams.client.js';
export { RedisStreamsContext } from './transport/redis-streams.context.js';
export { RedisStreamsExceptionFilter } from './transport/redis-streams-exception.filter.js';
export { StreamEvent, StreamMessage } from './transport/redis-streams.decorators.js';
export { RedisStreamsRecord, RedisStreamsRecordBuilder, type RedisStreamsRecordOptions } from './transport/redis-streams.record.js';
export { RedisStreamsTransaction } from './transport/redis-streams.transaction.js';
export { type MessageOrderingInfo } from './transport/redis-streams.context.js';
export { PartitioningManager, type PartitionStats, type PartitionRoute } from './partitioning/partitioning.manager.js';
export {
  Partitioner,
  HashPartitioner,
  RoundRobinPartitioner,
  KeyBasedPartitioner,
  createPartitioner,
  type PartitionInput,
  type PartitionChoice,
} from './partitioning/partitioner.js';
export { type PartitionLayout } from './partitioning/partition-layout.js';
export { OrderingManager, type OrderingGuarantees } from './ordering/ordering.manager.js';
export { type MessageHeaders, type WireError } from './wire/envelope.js';
export { type EnabledFeatures } from './transport/features.js';
export { type RedisStreamsMetricsSnapshot } from './observability/metrics.js';
export {
  aclSetUserCommand,
  aclSetUserArguments,
  aclCommandsFor,
  ACL_ROLES,
  ACL_ROLE_COMMANDS,
  CONNECTION_COMMANDS,
  CLUSTER_COMMANDS,
  type AclRole,
  type AclCommand,
  type AclUserOptions,
} from './connection/acl-roles.js';
export { type PermissionProblem } from './observability/permission-problems.js';
export { DeadLetterManager, type RedriveResult } from './dead-letter/dead-letter.manager.js';
export { type DeadLetter, type DeadLetterFilter } from './dead-letter/dead-letter.js';
export { DEAD_LETTER_REASONS, type DeadLetterReason } from './dead-letter/dead-letter-reason.js';
export { ReplayManager } from './replay/replay.manager.js';
export {
  ComplianceManager,
  type ErasureRequest,
  type ErasureReport,
} from './compliance/compliance.manager.js';
export { type StreamErasure, type UnreadableEntry } from './compliance/erasure.js';
export {
  type RetentionReport,
  type RetentionReportRequest,
  type StreamRetentionReport,
  type GroupRetentionReport,
} from './compliance/retention-report.js';
export {
  AuditTrail,
  type AuditEntry,
  type AuditContext,
  type AuditAction,
  type AuditQuery,
} from './observability/audit-trail.js';
export { auditJsonLine, auditCsvHeader, auditCsvLine, csvCell } from './observability/audit-export.js';
export { ReplayHandlers, type ReplayOutcome } from './replay/replay-handlers.js';
export { StreamMirror, type StreamMirrorStatus } from './replication/stream-mirror.js';
export { type MirrorLinkStatus } from './replication/mirror-link.js';
export { type MirroredStreamStatus } from './replication/mirror-stream.js';
export { SchemaManager, type SchemaVersion } from './schema/schema.manager.js';
export { type SchemaSource, type DtoClass, type StandardSchemaLike } from './schema/schema-source.js';
export { type CompatibilityMode, type CompatibilityResult, type BreakingChange } from './schema/compatibility.js';
export { type JsonSchema } from './schema/json-schema.js';
export {
  type ReplayRequest,
  type ReplayResult,
  type ReplayTarget,
  type ReplayProgress,
  type ReplayStop,
  type ReplayValidation,
  type ReplayedMessage,
} from './replay/replay-request.js';

export {
  RedisStreamsEnterpriseOptions,
  type RedisStreamsEnterpriseConfig,
  type ResolvedRedisStreamsConfig,
} from './config/redis-streams.options.js';
export { ConnectionOptions } from './config/connection.options.js';
export { StreamsOptions } from './config/streams.options.js';
export { ConsumerOptions } from './config/consumer.options.js';
export { RetryOptions, BackoffOptions, DeadLetterOptions } from './config/retry.options.js';
export { ClientOptions } from './config/client.options.js';
export { ComplianceOptions, AuditOptions, type SubjectLocation, type AuditActorSource } from './config/compliance.options.js';
export { ReplicationOptions, MirrorOptions, MirrorSourceOptions } from './config/replication.options.js';
export {
  OrderingOptions,
  PartitioningOptions,
  SchemaOptions,
  ReplayOptions,
  ExactlyOnceOptions,
  type PartitionKeyExtractor,
} from './config/features.options.js';
export { ConfigValidator, validateOptions, type ConfigValidationResult } from './config/validate-options.js';
export { developmentConfig, productionConfig, RedisConfigFactory } from './config/presets.js';

export {
  RedisStreamsError,
  type RedisStreamsErrorCode,
  InvalidOptionsError,
  type ConfigViolation,
  ConnectionClosedError,
  ConnectionFailedError,
  RequestTimeoutError,
  PayloadTooLargeError,
  InvalidPatternError,
  TooManyPendingRequestsError,
  MessageDecodeError,
  NoHandlerError,
  RemoteHandlerError,
  HandlerTimeoutError,
  RedisUnavailableError,
  AmbiguousWriteError,
  ReplicationTimeoutError,
  ReplayRangeError,
  SchemaValidationError,
  type SchemaIssue,
  SchemaRegistrationError,
  PartitionKeyMissingError,
  TransactionCrossSlotError,
  ConsumerNameInUseError,
  CausalTimeoutError,
  RejectedByHandlerError,
  NackedByHandlerError,
  InvalidMessageError,
  InvalidUsageError,
  PartitionLayoutError,
  PartitionScaleError,
  ClaimCheckLostError,
  InvalidReplyAddressError,
  MirrorRefusedError,
} from './errors/index.js';

export { SchemaRegistry, type AddVersionOutcome } from './schema/schema-registry.js';
export { RedisSchemaRegistry } from './schema/redis.schema-registry.js';
export { InMemorySchemaRegistry } from './schema/in-memory.schema-registry.js';
export { type StreamHandlerSchemaOptions } from './schema/handler-schema.js';
export { type SchemaMetricsSnapshot, type SchemaDirectionCounts } from './schema/schema-metrics.js';
export { SchemaUpcastError } from './errors/schema-upcast.error.js';
export { SchemaRegistryMissingError } from './errors/schema-registry-missing.error.js';
export { OptionalDependencyMissingError } from './errors/optional-dependency-missing.error.js';
export { EncryptionKeyProvider, type EncryptionKey } from './payload-codec/key-ring.js';
export { EncryptionOptions, EncryptionKeyOptions, CompressionOptions } from './config/payload-codec.options.js';
export { DecryptFailedError } from './errors/decrypt-failed.error.js';
export { CodecUnavailableError } from './errors/codec-unavailable.error.js';
