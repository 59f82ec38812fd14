/**
 * Least privilege: the Redis commands each role of the library sends, as data (the README's `ACL SETUSER` lines are
 * built from it, the e2e test creates its users with it, and the permission reporter names what a refused script
 * runs). Roles:
 * - `producer`: a `RedisStreamsClient` (emit, send, partitioned and idempotent publishes, claim-check uploads,
 *   schema stamping, producer-side retention);
 * - `consumer`: a `RedisStreamsServer` (reading, acks, retries, reclaims, dead letters, exactly-once commits, replies,
 *   partitions, schema validation, retention, claim-check sweeps);
 * - `operator`: the command line and the managers it uses (dead letters: list, redrive, delete; replay into a stream
 *   and group resets; schema registration and deletion; StreamMirror, on both the source and the target region).
 * A process that both consumes and emits (a Nest app with the server and the client on one connection config) needs
 * the union of `consumer` and `producer`: pass both roles.
 *
 * Commands are ACL names: lower case, `container|subcommand` for commands with subcommands. Every role also gets what
 * ioredis sends on each connection (CONNECTION_COMMANDS; HELLO and AUTH need no permission). Scripts run through
 * EVALSHA, and ioredis sends EVAL the first time a script runs on a connection (and after NOSCRIPT), so both are
 * granted; EVAL gives nothing more than the listed commands, because Redis checks every `redis.call` of a script
 * against the user's commands and keys. SCRIPT (LOAD, FLUSH, KILL) is not granted: the library never sends it.
 */
import { createHash } from 'node:crypto';
import { CLAIM_DUE, COMMIT, DEAD_LETTER, EXTEND_CLAIMS, RECLAIM_IDLE, REMOVE_IDLE_CONSUMERS, SCHEDULE_RETRY } from './scripts/settle.scripts.js';
import { DROP_BLOBS, PUBLISH, PUBLISH_BATCH, SEND_REPLY } from './scripts/publish.scripts.js';
import { REDRIVE, REGISTER_SCHEMA, REPLAY_COPY } from './scripts/operator.scripts.js';
import { ACQUIRE_LEASE, CLOSE_EPOCH, HEARTBEAT, RELEASE_LEASE, RENEW_LEASE, SWAP_LAYOUT } from './scripts/partitions.scripts.js';
import { RETENTION } from './scripts/retention.scripts.js';
import { MIRROR_APPEND } from './scripts/mirror.scripts.js';

export type AclRole = 'producer' | 'consumer' | 'operator';

export const ACL_ROLES: readonly AclRole[] = ['producer', 'consumer', 'operator'];

/** A command a role needs, and what for (shown when Redis refuses it). */
export interface AclCommand {
  readonly command: string;
  readonly why: string;
}

/** What ioredis sends on every connection, whatever the role. */
export const CONNECTION_COMMANDS: readonly AclCommand[] = [
  { command: 'info', why: "ioredis' ready check (waits while Redis loads its data after a restart); without it ioredis warns on every connect and skips the check" },
  { command: 'client|setname', why: 'names each connection (connection.connectionName) in CLIENT LIST' },
  { command: 'ping', why: 'liveness checks (a Cluster client pings the masters)' },
];

/** What an ioredis Cluster connection sends besides (only with `connection.cluster`). */
export const CLUSTER_COMMANDS: readonly AclCommand[] = [
  { command: 'cluster|slots', why: 'the slot map of a Redis Cluster' },
  { command: 'cluster|info', why: "ioredis' ready check on a Redis Cluster" },
];

const SCRIPTING: readonly AclCommand[] = [
  { command: 'evalsha', why: "runs the library's Lua scripts" },
  { command: 'eval', why: 'ioredis sends a script with EVAL the first time on each connection and after NOSCRIPT' },
];

const PRODUCER: readonly AclCommand[] = [
  ...SCRIPTING,
  { command: 'xadd', why: 'publishes entries (and rings the doorbell on a Redis Cluster)' },
  { command: 'get', why: 'reads partition layouts, idempotency records and partition epochs (publish script)' },
  { command: 'set', why: 'claim-check uploads, a new topic\'s partition layout, idempotency records' },
  { command: 'exists', why: 'checks a claim-check upload before its entry is written (publish script)' },
  { command: 'persist', why: 'keeps a claim-check upload once its entry is written (publish script)' },
  { command: 'unlink', why: 'drops a claim-check upload whose publish was refused (publish script)' },
  { command: 'incr', why: 'sequence numbers of ordered publishes (publish script)' },
  { command: 'zadd', why: 'indexes claim-checked payloads (publish script)' },
  { command: 'xread', why: 'send(): reads the client\'s reply stream' },
  { command: 'del', why: 'send(): deletes the client\'s reply stream on close' },
  { command: 'wait', why: 'connection.waitReplicas' },
  { command: 'hget', why: 'schema registry: reads a schema version' },
  { command: 'lindex', why: 'schema registry: the latest version of an event type' },
  { command: 'lrange', why: 'schema registry: lists the versions of an event type' },
  { command: 'time', why: "retention script (streams.maxLen/retentionMs): the Redis server's clock" },
  { command: 'xinfo|stream', why: 'retention script: stream length and first entry' },
  { command: 'xinfo|groups', why: 'retention script: what each consumer group still needs' },
  { command: 'xpending', why: 'retention script: oldest pending entry of each group' },
  { command: 'xrange', why: 'retention script: entries below the trimming boundary' },
  { command: 'xtrim', why: 'retention script: trims what every group has processed' },
  { command: 'xlen', why: 'retention script: stream length after trimming' },
];

const CONSUMER: readonly AclCommand[] = [
  ...SCRIPTING,
  { command: 'xgroup|create', why: 'creates the consumer groups (and partition streams)' },
  { command: 'xgroup|delconsumer', why: 'removes consumers that have been idle for long with nothing pending' },
  { command: 'xreadgroup', why: 'reads entries' },
  { command: 'xack', why: 'acknowledges handled entries' },
  { command: 'xpending', why: 'retries, reclaims, dead-lettering and commits check who owns an entry; status' },
  { command: 'xclaim', why: 'retries (claim due entries) and reclaims of dead consumers\' entries' },
  { command: 'xrange', why: 'dead-lettering copies the original entry; status; retention' },
  { command: 'xrevrange', why: 'the doorbell of a Redis Cluster' },
  { command: 'xread', why: 'the doorbell of a Redis Cluster' },
  { command: 'xadd', why: 'dead letters, replies to send(), emits inside ctx.transaction(), partition epoch marks' },
  { command: 'xinfo|groups', why: 'status (pending, lag) and retention' },
  { command: 'xinfo|stream', why: 'status and retention' },
  { command: 'xinfo|consumers', why: 'removal of idle consumers' },
  { command: 'xtrim', why: 'retention (streams.maxLen/retentionMs)' },
  { command: 'xlen', why: 'retention' },
  { command: 'time', why: "retry schedules, leases and status use the Redis server's clock (TIME inside the scripts)" },
  { command: 'hget', why: "dead-lettering reads a message's first failure time; schema registry reads" },
  { command: 'hsetnx', why: "records a message's first failure when its retry is scheduled" },
  { command: 'hdel', why: "clears a message's failure record once it succeeded or was dead-lettered" },
  { command: 'lindex', why: 'schema registry: the latest version of an event type' },
  { command: 'lrange', why: 'schema registry: lists the versions of an event type' },
  { command: 'zadd', why: 'retry schedules, partition members, claim-check index' },
  { command: 'zrem', why: 'retry schedules, partition members, claim-check index' },
  { command: 'zscore', why: 'reclaims skip entries waiting for a retry; claim-check sweeps' },
  { command: 'zrange', why: 'the next due retry (also without partitioning); partition members' },
  { command: 'zrangebyscore', why: 'due retries; claim-check sweeps' },
  { command: 'zremrangebyscore', why: 'expired partition members' },
  { command: 'zcard', why: 'claim-check sweeps' },
  { command: 'get', why: 'leases, partition layouts and epochs, claim-checked payloads, exactly-once records' },
  { command: 'set', why: 'consumer name lease, leases, exactly-once and causal records, partition layouts' },
  { command: 'exists', why: 'exactly-once and causal-dependency records, drained partitions, retention' },
  { command: 'del', why: 'releases a partition lease' },
  { command: 'unlink', why: 'claim-check sweeps delete payloads of trimmed entries' },
  { command: 'incr', why: 'partition fencing tokens' },
  { command: 'pexpire', why: 'lease renewal, reply stream expiry, partition scaler lease' },
  { command: 'client|id', why: 'partitioned topics: the id of the own reading connection' },
  { command: 'client|unblock', why: 'partitioned topics: ends the own blocked read when partitions change' },
];

const OPERATOR: readonly AclCommand[] = [
  ...SCRIPTING,
  { command: 'scan', why: 'finds the dead-letter streams of the prefix (on every master of a Cluster)' },
  { command: 'xrange', why: 'lists dead letters; reads the range to replay' },
  { command: 'xrevrange', why: 'replay: the entry before a start time (group reset, progress)' },
  { command: 'xlen', why: 'counts dead letters' },
  { command: 'xdel', why: 'redrive and delete dead letters' },
  { command: 'xadd', why: 'redrive and replay copies' },
  { command: 'zadd', why: 'redrive re-indexes a claim-checked payload' },
  { command: 'sadd', why: 'replay copies each entry once (dedupe set)' },
  { command: 'xgroup|setid', why: 'group reset (replay --reset-group)' },
  { command: 'xgroup|create', why: 'group reset of a group that does not exist yet' },
  { command: 'get', why: 'partition layouts of partitioned topics' },
  { command: 'hget', why: 'schema registry: reads a version' },
  { command: 'lrange', why: 'schema registry: lists versions' },
  { command: 'lindex', why: 'schema registry: the latest version (registration script)' },
  { command: 'hsetnx', why: 'schema registry: registers a version (registration script)' },
  { command: 'rpush', why: 'schema registry: registers a version (registration script)' },
  { command: 'multi', why: 'schema registry: deletes a version atomically' },
  { command: 'exec', why: 'schema registry: deletes a version atomically' },
  { command: 'hdel', why: 'schema registry: deletes a version' },
  { command: 'lrem', why: 'schema registry: deletes a version' },
  { command: 'xread', why: 'StreamMirror: reads the source region\'s streams' },
  { command: 'xinfo|stream', why: 'StreamMirror: the source streams\' counters (lag)' },
  { command: 'hgetall', why: 'StreamMirror: loads a checkpoint' },
  { command: 'hset', why: 'StreamMirror: moves a checkpoint with its batch (mirrorAppend script)' },
  { command: 'hincrby', why: 'StreamMirror: counts copies in the checkpoint (mirrorAppend script)' },
  { command: 'set', why: 'StreamMirror: gives a topic the source region\'s partition layout (SET NX)' },
];

/** Commands of each role, besides CONNECTION_COMMANDS (and CLUSTER_COMMANDS on a Redis Cluster). */
export const ACL_ROLE_COMMANDS: Readonly<Record<AclRole, readonly AclCommand[]>> = {
  producer: PRODUCER,
  consumer: CONSUMER,
  operator: OPERATOR,
};

/**
 * The library's scripts (as registered in scripts.ts), the roles that run them. A refused command inside a script is
 * reported with the script's name and the commands it runs (Redis 7.0 does not name the refused one).
 */
const SCRIPT_ROLES: Readonly<Record<string, { readonly lua: string; readonly roles: readonly AclRole[] }>> = {
  rseDeadLetter: { lua: DEAD_LETTER, roles: ['consumer'] },
  rseScheduleRetry: { lua: SCHEDULE_RETRY, roles: ['consumer'] },
  rseRedrive: { lua: REDRIVE, roles: ['operator'] },
  rseClaimDue: { lua: CLAIM_DUE, roles: ['consumer'] },
  rseReclaimIdle: { lua: RECLAIM_IDLE, roles: ['consumer'] },
  rseExtendClaims: { lua: EXTEND_CLAIMS, roles: ['consumer'] },
  rseSendReply: { lua: SEND_REPLY, roles: ['consumer'] },
  rseRemoveIdleConsumers: { lua: REMOVE_IDLE_CONSUMERS, roles: ['consumer'] },
  rseReplayCopy: { lua: REPLAY_COPY, roles: ['operator'] },
  rseRegisterSchema: { lua: REGISTER_SCHEMA, roles: ['operator'] },
  rsePublish: { lua: PUBLISH, roles: ['producer'] },
  rsePublishBatch: { lua: PUBLISH_BATCH, roles: ['producer'] },
  rseAcquireLease: { lua: ACQUIRE_LEASE, roles: ['consumer'] },
  rseRenewLease: { lua: RENEW_LEASE, roles: ['consumer'] },
  rseReleaseLease: { lua: RELEASE_LEASE, roles: ['consumer'] },
  rseHeartbeat: { lua: HEARTBEAT, roles: ['consumer'] },
  rseCloseEpoch: { lua: CLOSE_EPOCH, roles: ['consumer'] },
  rseSwapLayout: { lua: SWAP_LAYOUT, roles: ['consumer'] },
  rseRetention: { lua: RETENTION, roles: ['consumer', 'producer'] },
  rseCommit: { lua: COMMIT, roles: ['consumer'] },
  rseDropBlobs: { lua: DROP_BLOBS, roles: ['consumer'] },
  // StreamMirror (replication/) writes copies into its own region's streams: an operator-side process.
  rseMirrorAppend: { lua: MIRROR_APPEND, roles: ['operator'] },
};

/** Commands with subcommands, named `container|subcommand` in ACL rules. */
const CONTAINERS = new Set(['client', 'cluster', 'xinfo', 'xgroup', 'config', 'script', 'acl', 'object', 'memory', 'function', 'command']);

/** The ACL name of a command sent as `name args...` (`CLIENT SETNAME x` -> `client|setname`). */
export function aclCommandName(name: string, firstArg?: unknown): string {
  const command = name.toLowerCase();
  if (CONTAINERS.has(command) && (typeof firstArg === 'string' || Buffer.isBuffer(firstArg))) return `${command}|${String(firstArg).toLowerCase()}`;
  return command;
}

/** The commands a Lua script calls (literal `redis.call('X', ...)`; a command chosen at run time is not listed). */
export function scriptCommands(lua: string): string[] {
  const found = new Set<string>();
  for (const [, name, sub] of lua.matchAll(/redis\.p?call\(\s*'([A-Za-z]+)'(?:\s*,\s*'([A-Za-z]+)')?/g)) found.add(aclCommandName(name!, sub));
  return [...found];
}

export interface LibraryScript {
  readonly name: string;
  readonly roles: readonly AclRole[];
  readonly commands: readonly string[];
}

const SCRIPTS_BY_SOURCE = new Map<string, LibraryScript>();
for (const [name, { lua, roles }] of Object.entries(SCRIPT_ROLES)) {
  const script = { name, roles, commands: scriptCommands(lua) };
  SCRIPTS_BY_SOURCE.set(lua, script);
  SCRIPTS_BY_SOURCE.set(createHash('sha1').update(lua).digest('hex'), script);
}

/** Every library script with its roles and commands. */
export function libraryScripts(): LibraryScript[] {
  return Object.entries(SCRIPT_ROLES).map(([name, { lua, roles }]) => ({ name, roles, commands: scriptCommands(lua) }));
}

/** The library script sent as EVALSHA `sha` or EVAL `lua`; undefined for anything else. */
export function libraryScriptOf(shaOrLua: string): LibraryScript | undefined {
  return SCRIPTS_BY_SOURCE.get(shaOrLua);
}

export interface AclUserOptions {
  /** The user name (letters, digits and `._-@`). */
  readonly user: string;
  /** Its password in clear text (no spaces), written as `><password>`; or give `passwordSha256`. */
  readonly password?: string;
  /** SHA-256 of the password (64 hex digits), written as `#<hash>`, so the line holds no clear-text password. */
  readonly passwordSha256?: string;
  /** `streams.keyPrefix` of the deployment: the user may touch `<keyPrefix>:*` only. */
  readonly keyPrefix: string;
  /** Add what an ioredis Cluster connection needs (CLUSTER SLOTS, CLUSTER INFO). @default false */
  readonly cluster?: boolean;
}

/** The commands one role (or several, merged) needs, in ACL names, without duplicates. */
export function aclCommandsFor(roles: AclRole | readonly AclRole[], options: { readonly cluster?: boolean } = {}): string[] {
  const list = typeof roles === 'string' ? [roles] : roles;
  const commands = new Set<string>();
  for (const entry of CONNECTION_COMMANDS) commands.add(entry.command);
  if (options.cluster) for (const entry of CLUSTER_COMMANDS) commands.add(entry.command);
  for (const role of list) for (const entry of ACL_ROLE_COMMANDS[role]) commands.add(entry.command);
  return [...commands];
}

/**
 * The arguments of `ACL SETUSER` for a role (or the union of several): a fresh user (`reset`), enabled, with its
 * password, the keys `~<keyPrefix>:*`, no Pub/Sub channels (the library uses none), no command but the role's.
 * Re-running it replaces the user's rights.
 * @throws Error for a user name, password or prefix that cannot be written into an ACL rule.
 */
export function aclSetUserArguments(roles: AclRole | readonly AclRole[], options: AclUserOptions): string[] {
  const { user, password, passwordSha256, keyPrefix } = options;
  if (!/^[A-Za-z0-9._@-]{1,128}$/.test(user)) throw new Error(`ACL user name must be 1-128 characters of A-Z a-z 0-9 . _ @ -: ${user}`);
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(keyPrefix)) throw new Error(`keyPrefix must be 1-64 characters of A-Z a-z 0-9 . _ : - (as streams.keyPrefix): ${keyPrefix}`);
  if ((password === undefined) === (passwordSha256 === undefined)) throw new Error('give exactly one of password and passwordSha256');
  if (password !== undefined && !/^\S+$/.test(password)) throw new Error('the password must not be empty or contain white space');
  if (passwordSha256 !== undefined && !/^[0-9a-f]{64}$/i.test(passwordSha256)) throw new Error('passwordSha256 must be 64 hex digits');
  const secret = password !== undefined ? `>${password}` : `#${passwordSha256!.toLowerCase()}`;
  const commands = aclCommandsFor(roles, options).map((command) => `+${command}`);
  return [user, 'reset', 'on', secret, `~${keyPrefix}:*`, 'resetchannels', '-@all', ...commands];
}

/**
 * The `ACL SETUSER` line of a role, ready for `redis-cli` (run it on every master of a Redis Cluster, or put the
 * rules after `user <name>` in an ACL file):
 *
 * ```ts
 * aclSetUserCommand('consumer', { user: 'orders-svc', password: 's3cret', keyPrefix: 'rse' });
 * // ACL SETUSER orders-svc reset on >s3cret ~rse:* resetchannels -@all +info +client|setname +ping +evalsha ...
 * aclSetUserCommand(['consumer', 'producer'], { ... }); // a service that consumes and emits
 * ```
 * A handler's `ctx.transaction().call(...)` writes run as this user too: add their commands (and keys outside the
 * prefix) yourself.
 */
export function aclSetUserCommand(roles: AclRole | readonly AclRole[], options: AclUserOptions): string {
  return `ACL SETUSER ${aclSetUserArguments(roles, options).join(' ')}`;
}
