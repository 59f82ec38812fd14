/**
 * Least privilege (issue 14): the README's ACL users, built by aclSetUserArguments() for a prefix, run every path of
 * their role (on one server and on a local 3-master Redis Cluster, users created on every master) without a single
 * refusal in ACL LOG; outside their rights Redis says NOPERM; and a consumer user missing a command is reported once,
 * by name, with the server's status unhealthy.
 */
import { Controller, Inject, Logger, type INestMicroservice } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { Cluster, Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import {
  aclSetUserArguments,
  DeadLetterManager,
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsRecordBuilder,
  ReplayManager,
  SchemaManager,
  StreamEvent,
  type AclRole,
  type RedisStreamsEnterpriseConfig,
  type RedisStreamsServer,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { RedisCluster } from '../support/redis-cluster.mjs';
import { cleanupPrefix, keysMatching, rawRedis, redisUrl, uniquePrefix, type RawRedis } from '../support/redis.js';
import { beside, testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const PASSWORD = 'acl-test-pw';
const STATE = Symbol('STATE');

/** What the handlers of one scenario saw. */
class Seen {
  readonly handled = new Map<string, number>();
  /** Messages of `acl.flaky` that failed once already. */
  readonly failedOnce = new Set<string>();
  poisonFails = true;
  /** ctx.transaction() emits into another stream: not on a Redis Cluster (another slot: TransactionCrossSlotError). */
  transactionEmits = true;

  count(pattern: string): number {
    return this.handled.get(pattern) ?? 0;
  }

  note(pattern: string): void {
    this.handled.set(pattern, this.count(pattern) + 1);
  }
}

@Controller()
class PlainController {
  constructor(@Inject(STATE) private readonly seen: Seen) {}

  @StreamEvent('acl.plain')
  plain() {
    this.seen.note('acl.plain');
  }

  @StreamEvent('acl.ghost')
  ghost() {
    this.seen.note('acl.ghost');
  }

  @StreamEvent('acl.flaky')
  flaky(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    if (!this.seen.failedOnce.has(ctx.getMessageId())) {
      this.seen.failedOnce.add(ctx.getMessageId());
      throw new Error(`first attempt of ${data.n} fails`);
    }
    this.seen.note('acl.flaky');
  }

  @StreamEvent('acl.poison')
  poison() {
    if (this.seen.poisonFails) throw new Error('poison');
    this.seen.note('acl.poison');
  }

  @StreamEvent('acl.typed')
  typed() {
    this.seen.note('acl.typed');
  }

  @StreamEvent('acl.tx')
  tx(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    const transaction = ctx.transaction().call('SET', beside(ctx.getStream(), `done:${data.n}`), '1');
    if (this.seen.transactionEmits) transaction.emit('acl.out', { n: data.n });
    this.seen.note('acl.tx');
  }

  @StreamEvent('acl.out')
  out() {
    this.seen.note('acl.out');
  }

  @MessagePattern('acl.sum')
  sum(@Payload() numbers: number[]) {
    return numbers.reduce((a, b) => a + b, 0);
  }
}

@Controller()
class PartitionedController {
  constructor(@Inject(STATE) private readonly seen: Seen) {}

  @StreamEvent('acl.parted')
  parted(@Payload() data: { key: string; n: number }, @Ctx() ctx: RedisStreamsContext) {
    ctx.transaction().call('INCR', beside(ctx.getStream(), `count:${data.key}`));
    this.seen.note('acl.parted');
  }
}

/** Where a scenario runs: one server (the test run's) or a local Redis Cluster; `admin` is the default user. */
interface Target {
  readonly name: string;
  readonly admin: RawRedis;
  /** Each master (one for a single server): ACL users live per node. */
  masters(): Promise<Redis[]>;
  connection(user: string): RedisStreamsEnterpriseConfig['connection'];
  /** A plain connection (or Cluster) logged in as `user`. */
  login(user: string): RawRedis;
  readonly cluster: boolean;
}

function singleServer(): Target {
  const admin = rawRedis() as Redis;
  const urlOf = (user: string) => {
    const url = new URL(redisUrl());
    url.username = user;
    url.password = PASSWORD;
    return url.toString();
  };
  return {
    name: 'single server',
    admin,
    masters: async () => [admin],
    connection: (user) => ({ url: urlOf(user) }),
    login: (user) => new Redis(urlOf(user), { maxRetriesPerRequest: 1 }),
    cluster: false,
  };
}

function onCluster(cluster: RedisCluster): Target {
  const admin = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  return {
    name: 'Redis Cluster',
    admin,
    masters: async () => {
      if (admin.status !== 'ready') await new Promise((resolve) => admin.once('ready', resolve));
      return admin.nodes('master');
    },
    connection: (user) => ({ cluster: { nodes: cluster.nodes, options: { redisOptions: { username: user, password: PASSWORD } } } }),
    login: (user) => new Cluster(cluster.nodes, { redisOptions: { username: user, password: PASSWORD, maxRetriesPerRequest: 1 } }),
    cluster: true,
  };
}

/** Creates (or replaces) a user with the commands of its roles, minus `without`, on every master. */
async function createUser(target: Target, user: string, roles: AclRole | AclRole[], prefix: string, without: string[] = []): Promise<void> {
  const args = aclSetUserArguments(roles, { user, password: PASSWORD, keyPrefix: prefix, cluster: target.cluster }).filter(
    (a) => !without.includes(a.replace(/^\+/, '')),
  );
  for (const node of await target.masters()) await node.call('ACL', 'SETUSER', ...args);
}

async function deleteUsers(target: Target, users: string[]): Promise<void> {
  for (const node of await target.masters()) await node.call('ACL', 'DELUSER', ...users);
}

/** ACL LOG entries (every master) of these users: each a refused command, key or channel. */
async function refusals(target: Target, users: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const node of await target.masters()) {
    const log = (await node.call('ACL', 'LOG', '1000')) as (unknown[] | Record<string, unknown>)[];
    for (const raw of log) {
      // RESP2 gives field/value arrays, RESP3 maps.
      const entry = new Map<string, unknown>(Array.isArray(raw) ? raw.flatMap((v, i) => (i % 2 === 0 ? [[String(v), raw[i + 1]] as [string, unknown]] : [])) : Object.entries(raw));
      if (users.includes(String(entry.get('username')))) found.push(`${entry.get('username')}: ${entry.get('reason')} ${entry.get('object')}`);
    }
  }
  return found;
}

async function pendingOf(admin: RawRedis, stream: string, group: string): Promise<number> {
  try {
    return Number(((await admin.xpending(stream, group)) as unknown[])[0]);
  } catch {
    return 0; // no such stream or group
  }
}

/** Error lines the library logged (every Logger instance). */
const errorLines: string[] = [];
const originalError = Logger.prototype.error;

beforeAll(() => {
  Logger.prototype.error = function (this: Logger, message: unknown, ...rest: unknown[]) {
    errorLines.push(String(message));
    return (originalError as (...args: unknown[]) => void).call(this, message, ...rest);
  };
});

afterAll(() => {
  Logger.prototype.error = originalError;
});

/** Every path of every role, as that role's user. */
function scenario(targetOf: () => Target) {
  const prefix = uniquePrefix('acl');
  const keys = testKeys(prefix);
  const users = { producer: `${prefix}-producer`, consumer: `${prefix}-consumer`, operator: `${prefix}-operator` };
  const seen = new Seen();
  const apps: INestMicroservice[] = [];
  const closers: { close(): Promise<void> }[] = [];
  let target: Target;
  let producer: RedisStreamsClient;
  let partitionedProducer: RedisStreamsClient;
  const partitioning = { enabled: true, partitionCount: 3, partitionKey: 'key' } as const;
  const as = (user: string, overrides: RedisStreamsEnterpriseConfig = {}) =>
    testConfig(prefix, { ...overrides, connection: target.connection(user), schema: { enabled: true, validationMode: 'strict', ...overrides.schema } });

  beforeAll(async () => {
    target = targetOf();
    seen.transactionEmits = !target.cluster;
    await createUser(target, users.producer, 'producer', prefix);
    await createUser(target, users.consumer, 'consumer', prefix);
    await createUser(target, users.operator, 'operator', prefix);
    // Schemas are registered by the operator (a deploy step); producers and consumers only read them.
    const schemas = new SchemaManager(as(users.operator));
    closers.push(schemas);
    await schemas.registerSchema('acl.typed', { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }, '1');
    producer = new RedisStreamsClient(as(users.producer, { replay: { enabled: true } }));
    partitionedProducer = new RedisStreamsClient(as(users.producer, { partitioning, exactlyOnce: { enabled: true } }));
    closers.push(producer, partitionedProducer);
    // A consumer that read an entry and died: the server must reclaim it.
    await lastValueFrom(producer.emit('acl.ghost', { n: 1 }));
    await target.admin.xgroup('CREATE', keys.stream('acl.ghost'), 'svc', '0', 'MKSTREAM');
    await target.admin.xreadgroup('GROUP', 'svc', 'ghost', 'COUNT', 10, 'STREAMS', keys.stream('acl.ghost'), '>');
    const provide = [{ provide: STATE, useValue: seen }];
    apps.push((await startConsumer(as(users.consumer), [PlainController], provide)).app);
    apps.push(
      (await startConsumer(as(users.consumer, { partitioning, ordering: { enabled: true, strategy: 'partition', partitionKey: 'key' }, exactlyOnce: { enabled: true } }), [PartitionedController], provide)).app,
    );
  }, 60_000);

  afterAll(async () => {
    for (const closer of closers) await closer.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(target.admin, prefix);
    await deleteUsers(target, Object.values(users));
  }, 30_000);

  it('runs delivery, retries, reclaim, dead letters, redrive, replay, partitions, exactly-once and schemas with no refusal', async () => {
    const emit = (client: RedisStreamsClient, pattern: string, data: unknown) => lastValueFrom(client.emit(pattern, data));
    for (let n = 0; n < 5; n++) await emit(producer, 'acl.plain', { n });
    // Idempotent publish: the same key twice is one entry.
    const once = () => new RedisStreamsRecordBuilder({ n: 99 }).setIdempotencyKey('acl-once').build();
    expect(await emit(producer, 'acl.plain', once())).toBe(await emit(producer, 'acl.plain', once()));
    for (let n = 0; n < 3; n++) await emit(producer, 'acl.flaky', { n });
    for (let n = 0; n < 2; n++) await emit(producer, 'acl.poison', { n });
    for (let n = 0; n < 2; n++) await emit(producer, 'acl.typed', { n });
    // Stamped without validation by a producer in 'ignore' mode: the strict consumer dead-letters it.
    const careless = new RedisStreamsClient(as(users.producer, { schema: { validationMode: 'ignore' } }));
    closers.push(careless);
    await emit(careless, 'acl.typed', { n: 'not a number' });
    for (let n = 0; n < 3; n++) await emit(producer, 'acl.tx', { n });
    for (let n = 0; n < 8; n++) await emit(partitionedProducer, 'acl.parted', new RedisStreamsRecordBuilder({ key: `k${n % 3}`, n }).setIdempotencyKey(`p-${n}`).build());
    expect(await lastValueFrom(producer.send('acl.sum', [1, 2, 3]))).toBe(6);

    await waitFor(
      async () =>
        seen.count('acl.plain') === 6 &&
        seen.count('acl.ghost') === 1 &&
        seen.count('acl.flaky') === 3 &&
        seen.count('acl.typed') === 2 &&
        seen.count('acl.tx') === 3 &&
        seen.count('acl.out') === (seen.transactionEmits ? 3 : 0) &&
        seen.count('acl.parted') === 8,
      { timeoutMs: 20_000, message: 'every message handled' },
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: handled ${JSON.stringify([...seen.handled])}; refused ${JSON.stringify(await refusals(target, Object.values(users)))}`);
    });
    expect(await target.admin.exists(...[0, 1, 2].map((n) => beside(keys.stream('acl.tx'), `done:${n}`)))).toBe(3);
    const counts = await Promise.all(['k0', 'k1', 'k2'].map(async (k) => keysMatching(target.admin, `${prefix}:{acl.parted#*}:count:${k}`)));
    expect(counts.map((c) => c.length)).toEqual([1, 1, 1]);

    // Operator: dead letters (listed, then redriven once the handler is fixed), a replay copy and group resets.
    const deadLetters = new DeadLetterManager(as(users.operator));
    closers.push(deadLetters);
    await waitFor(async () => (await deadLetters.count('acl.poison')) === 2 && (await deadLetters.count('acl.typed')) === 1, {
      timeoutMs: 15_000,
      message: 'two poison messages and one invalid one dead-lettered',
    });
    expect(await deadLetters.patterns()).toEqual(['acl.poison', 'acl.typed']);
    expect((await deadLetters.list('acl.typed'))[0]).toMatchObject({ reason: 'schema-invalid' });
    seen.poisonFails = false;
    expect((await deadLetters.redrive('acl.poison')).redriven).toHaveLength(2);
    await waitFor(() => seen.count('acl.poison') === 2, { message: 'redriven messages handled' });

    const replay = new ReplayManager(as(users.operator, { replay: { enabled: true } }));
    closers.push(replay);
    expect(await replay.replayMessages({ streamName: 'acl.plain', target: { stream: 'acl.copy' } })).toMatchObject({ messagesReplayed: 6 });
    expect(await target.admin.xlen(keys.stream('acl.copy'))).toBe(6);
    await replay.replayMessages({ streamName: 'acl.plain', target: { resetGroup: 'audit' } });
    await replay.replayMessages({ streamName: 'acl.plain', target: { resetGroup: 'svc' } });
    await waitFor(() => seen.count('acl.plain') === 12, { message: 'the reset group consumes acl.plain again' });

    // Nothing left pending anywhere, and Redis refused nothing to any of the three users.
    const streams = (await keysMatching(target.admin, `${prefix}:{*}`)).filter((key) => /\}$/.test(key) && !key.includes('{#') && !key.includes('{reply:'));
    await waitFor(async () => (await Promise.all(streams.map((s) => pendingOf(target.admin, s, 'svc')))).every((n) => n === 0), {
      message: 'no entry pending',
    });
    expect(await refusals(target, Object.values(users))).toEqual([]);
    expect(errorLines.filter((line) => line.startsWith('Redis refused'))).toEqual([]);
  }, 90_000);

  it('refuses each role everything outside its rights with NOPERM', async () => {
    const outside = 'not-the-prefix:{x}';
    const expectations: [AclRole, (r: RawRedis) => Promise<unknown>, RegExp][] = [];
    for (const role of ['producer', 'consumer', 'operator'] as const) {
      expectations.push(
        [role, (r) => r.xadd(outside, '*', 'a', 'b'), /NOPERM.*(key|command)/],
        [role, (r) => r.call('FLUSHALL'), /NOPERM.*'flushall'/],
        [role, (r) => r.call('CONFIG', 'GET', 'maxmemory'), /NOPERM.*'config\|get'/],
        [role, (r) => r.call('KEYS', '*'), /NOPERM.*'keys'/],
        [role, (r) => r.call('PUBLISH', `${prefix}:ch`, 'x'), /NOPERM.*'publish'/],
        [role, (r) => r.call('SCRIPT', 'FLUSH'), /NOPERM.*'script\|flush'/],
        [role, (r) => r.call('ACL', 'LIST'), /NOPERM.*'acl\|list'/],
      );
    }
    expectations.push(
      ['producer', (r) => r.call('XREADGROUP', 'GROUP', 'svc', 'x', 'STREAMS', keys.stream('acl.plain'), '>'), /NOPERM.*'xreadgroup'/],
      ['producer', (r) => r.call('XDEL', keys.stream('acl.plain'), '0-1'), /NOPERM.*'xdel'/],
      ['consumer', (r) => r.call('XDEL', keys.stream('acl.plain'), '0-1'), /NOPERM.*'xdel'/],
      ['consumer', (r) => r.call('SCAN', '0'), /NOPERM.*'scan'/],
      ['operator', (r) => r.call('XREADGROUP', 'GROUP', 'svc', 'x', 'STREAMS', keys.stream('acl.plain'), '>'), /NOPERM.*'xreadgroup'/],
      ['operator', (r) => r.call('XACK', keys.stream('acl.plain'), 'svc', '0-1'), /NOPERM.*'xack'/],
      // A script may only do what its caller may: a key outside the prefix is refused inside EVAL too.
      ['consumer', (r) => r.call('EVAL', "return redis.call('GET', KEYS[1])", 1, outside), /can't access|NOPERM/],
    );
    const logins = new Map<AclRole, RawRedis>();
    try {
      for (const role of ['producer', 'consumer', 'operator'] as const) logins.set(role, target.login(users[role]));
      for (const [role, attempt, refusal] of expectations) {
        await expect(attempt(logins.get(role)!)).rejects.toThrow(refusal);
      }
      // ... while what the role is for still works on this very connection.
      expect(await logins.get('producer')!.xadd(keys.stream('acl.own'), '*', 'a', 'b')).toMatch(/^\d+-\d+$/);
    } finally {
      for (const login of logins.values()) login.disconnect();
    }
  }, 30_000);
}

describe('least-privilege ACL users (issue 14)', () => {
  describe('on a single server', () => {
    let target: Target;
    scenario(() => (target ??= singleServer()));
    afterAll(() => target?.admin.disconnect());
  });

  describe('on a local 3-master Redis Cluster', () => {
    let cluster: RedisCluster | undefined;
    let target: Target | undefined;
    beforeAll(async () => {
      cluster = await RedisCluster.start();
    }, 60_000);
    scenario(() => (target ??= onCluster(cluster!)));
    afterAll(async () => {
      target?.admin.disconnect();
      await cluster?.stop();
    }, 30_000);
  });

  describe('a consumer user missing a command', () => {
    const prefix = uniquePrefix('acl-missing');
    const keys = testKeys(prefix);
    const seen = new Seen();
    const apps: INestMicroservice[] = [];
    let target: Target;
    const as = (user: string) => testConfig(prefix, { connection: target.connection(user) });

    beforeAll(() => {
      target = singleServer();
    });

    afterAll(async () => {
      await Promise.all(apps.map((app) => app.close()));
      await cleanupPrefix(target.admin, prefix);
      await deleteUsers(target, [`${prefix}-nohdel`, `${prefix}-nozrange`, `${prefix}-producer`]).catch(() => undefined);
      target.admin.disconnect();
    }, 30_000);

    async function start(user: string, without: string[]): Promise<RedisStreamsServer> {
      await createUser(target, user, 'consumer', prefix, without);
      const started = await startConsumer(as(user), [PlainController], [{ provide: STATE, useValue: seen }]);
      apps.push(started.app);
      return started.server;
    }

    it('is named once in the log, and the status is unhealthy with the refused command (HDEL, outside scripts)', async () => {
      const server = await start(`${prefix}-nohdel`, ['hdel']);
      await createUser(target, `${prefix}-producer`, 'producer', prefix);
      const producer = new RedisStreamsClient(as(`${prefix}-producer`));
      try {
        for (let n = 0; n < 3; n++) await lastValueFrom(producer.emit('acl.flaky', { n }));
        await waitFor(() => seen.count('acl.flaky') >= 3, { message: 'the flaky messages handled on their retry' });
        await waitFor(async () => (await server.getStatus()).healthy === false, { message: 'status unhealthy' });
        const status = await server.getStatus();
        expect(status.permissionProblems).toEqual([
          { command: 'HDEL', kind: 'command', message: expect.stringMatching(/^NOPERM .*'hdel'/), since: expect.any(String), count: expect.any(Number) },
        ]);
        expect(status.warnings).toContainEqual(expect.stringMatching(/^Redis refuses HDEL for lack of ACL rights/));
        const lines = errorLines.filter((line) => line.startsWith('Redis refused HDEL'));
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(new RegExp(`^Redis refused HDEL for user ${prefix}-nohdel: NOPERM .*'hdel' command — grant it \\(see the docs › Security › Least privilege \\(ACL\\)`));
        expect(status.permissionProblems[0]!.count).toBeGreaterThanOrEqual(3);
      } finally {
        await producer.close();
      }
    }, 30_000);

    it('names the script and its commands when Redis 7.0 does not say which one (ZRANGE in the retry claim); the retry never happens', async () => {
      await apps.pop()?.close();
      const server = await start(`${prefix}-nozrange`, ['zrange']);
      const producer = new RedisStreamsClient(as(`${prefix}-producer`));
      try {
        const before = seen.count('acl.flaky');
        await lastValueFrom(producer.emit('acl.flaky', { n: 10 }));
        await waitFor(async () => (await server.getStatus()).healthy === false, { message: 'status unhealthy' });
        const status = await server.getStatus();
        expect(status.permissionProblems).toEqual([expect.objectContaining({ script: 'rseClaimDue', kind: 'command' })]);
        const lines = errorLines.filter((line) => line.includes(`for user ${prefix}-nozrange`));
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^Redis refused (a command|ZRANGE) in script rseClaimDue .*ZRANGE/);
        expect(seen.count('acl.flaky')).toBe(before);
        expect(await pendingOf(target.admin, keys.stream('acl.flaky'), 'svc')).toBe(1);
      } finally {
        await producer.close();
      }
    }, 30_000);
  });
});
