import { Controller, ValidationPipe, type INestMicroservice, type Type } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { IsBoolean, IsEmail, IsIn, IsOptional, IsString } from 'class-validator';
import { lastValueFrom } from 'rxjs';
import {
  DeadLetterManager,
  RedisStreamsClient,
  RedisStreamsEnterpriseModule,
  RedisStreamsExceptionFilter,
  RedisStreamsServer,
  SchemaManager,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

class UserCreatedV1 {
  @IsString() userId!: string;
  @IsEmail() email!: string;
}

/** v2 adds two optional fields; their defaults are the property initialisers. */
class UserCreatedV2 {
  @IsString() userId!: string;
  @IsEmail() email!: string;
  @IsOptional() @IsIn(['free', 'pro']) plan: 'free' | 'pro' = 'free';
  @IsOptional() @IsBoolean() marketingOptIn = false;
}

@Controller()
class UsersV2Controller {
  readonly users: unknown[] = [];

  @StreamEvent('user.created', { schema: { version: '2.0.0', type: UserCreatedV2 } })
  created(@Payload() user: UserCreatedV2) {
    this.users.push(user);
  }
}

describe('handlers that ask for a schema version: upcasting (real Redis)', () => {
  const prefix = uniquePrefix('schema-upcast');
  const keys = testKeys(prefix);
  const apps: INestMicroservice[] = [];
  const closers: { close(): Promise<void> }[] = [];
  let redis: RawRedis;
  let schemas: SchemaManager;
  const config = (overrides: RedisStreamsEnterpriseConfig = {}) =>
    testConfig(prefix, { ...overrides, schema: { enabled: true, validationMode: 'strict', ...overrides.schema } });
  const stream = (pattern: string) => keys.stream(pattern);
  const closeLater = <T extends { close(): Promise<void> }>(c: T): T => {
    closers.push(c);
    return c;
  };

  /** Boots a consumer app with Nest's ValidationPipe (transform, whitelist, forbidNonWhitelisted) on every handler. */
  async function startWithValidationPipe(cfg: RedisStreamsEnterpriseConfig, controllers: Type[]): Promise<{ app: INestMicroservice; server: RedisStreamsServer }> {
    const moduleRef = await Test.createTestingModule({ imports: [RedisStreamsEnterpriseModule.forRoot(cfg)], controllers }).compile();
    const server = moduleRef.get(RedisStreamsServer);
    const app = moduleRef.createNestMicroservice({ strategy: server });
    app.useLogger(['error']);
    app.useGlobalFilters(new RedisStreamsExceptionFilter());
    app.useGlobalPipes(new ValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true }));
    await app.listen();
    apps.push(app);
    return { app, server };
  }

  beforeAll(async () => {
    redis = rawRedis();
    schemas = closeLater(new SchemaManager(config()));
    await schemas.registerSchema('user.created', UserCreatedV1, '1.0.0');
  });

  afterAll(async () => {
    for (const c of closers) await c.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a v1 producer and a v2 handler: v1 messages arrive as UserCreatedV2 instances with the added fields defaulted, and pass ValidationPipe', async () => {
    // A producer from before v2: validates against v1 and stamps it.
    const oldProducer = closeLater(new RedisStreamsClient(config()));
    await lastValueFrom(oldProducer.emit('user.created', { userId: 'u1', email: 'ada@example.com' }));
    await schemas.registerSchema('user.created', UserCreatedV2, '2.0.0', 'backward');
    const { app, server } = await startWithValidationPipe(config({ consumer: { group: 'users', groupStartId: '0' } }), [UsersV2Controller]);
    // A current producer stamps v2.
    const producer = closeLater(new RedisStreamsClient(config()));
    await waitFor(async () => (await schemas.latestVersion('user.created')) === '2.0.0');
    await lastValueFrom(producer.emit('user.created', { userId: 'u2', email: 'bo@example.com', plan: 'pro' }));
    const { users } = app.get(UsersV2Controller);
    await waitFor(() => users.length === 2, { message: 'both users' });
    expect(users.every((u) => u instanceof UserCreatedV2)).toBe(true);
    // Handled concurrently: compare in a fixed order.
    const byId = [...users].sort((a, b) => String((a as { userId: string }).userId).localeCompare(String((b as { userId: string }).userId)));
    expect(byId.map((u) => ({ ...(u as object) }))).toEqual([
      { userId: 'u1', email: 'ada@example.com', plan: 'free', marketingOptIn: false },
      { userId: 'u2', email: 'bo@example.com', plan: 'pro', marketingOptIn: false },
    ]);
    const stamps = (await redis.xrange(stream('user.created'), '-', '+')).map(([, f]) => f[f.indexOf('schema') + 1]);
    expect(stamps).toEqual(['user.created@1.0.0', 'user.created@2.0.0']);
    // ValidationPipe (forbidNonWhitelisted) and the registry agreed: nothing failed, nothing was retried.
    expect(server.getMetrics()).toMatchObject({ failed: 0, retried: 0, deadLettered: 0, schemaInvalid: 0 });
  });

  it('strict: a message of an incompatible version and one of an unknown version are dead-lettered with the reason; the consumer goes on', async () => {
    // v3 changes a type: registered with compatibility none, it cannot be mapped to v2.
    await schemas.registerSchema('user.created', { type: 'object', properties: { userId: { type: 'integer' }, email: { type: 'string' } }, required: ['userId', 'email'] }, '3.0.0', 'none');
    @Controller()
    class StrictUsersController {
      readonly users: unknown[] = [];
      @StreamEvent('user.created', { schema: { version: '2.0.0', type: UserCreatedV2 } })
      created(@Payload() user: UserCreatedV2) {
        this.users.push(user);
      }
    }
    const { app, server } = await startWithValidationPipe(config({ consumer: { group: 'strict-users', groupStartId: '$' } }), [StrictUsersController]);
    await redis.xadd(stream('user.created'), '*', 'schema', 'user.created@3.0.0', 'data', JSON.stringify({ userId: 7, email: 'cy@example.com' }));
    await redis.xadd(stream('user.created'), '*', 'schema', 'user.created@0.1.0', 'data', JSON.stringify({ userId: 'u8', email: 'di@example.com' }));
    await redis.xadd(stream('user.created'), '*', 'schema', 'user.created@1.0.0', 'data', JSON.stringify({ userId: 'u9', email: 'ed@example.com' }));
    await waitFor(() => app.get(StrictUsersController).users.length === 1, { message: 'the mappable message' });
    expect(app.get(StrictUsersController).users).toEqual([expect.objectContaining({ userId: 'u9', plan: 'free' })]);
    const letters = closeLater(new DeadLetterManager(config({ consumer: { group: 'strict-users' } })));
    const filter = { reason: 'schema-invalid', group: 'strict-users' };
    await waitFor(async () => (await letters.list('user.created', filter)).length === 2, { message: 'two dead letters' });
    const messages = (await letters.list('user.created', filter)).map((l) => `${l.errorName}: ${l.errorMessage}`).sort();
    expect(messages).toEqual([
      expect.stringMatching(/^SchemaUpcastError: .*written with schema version 0\.1\.0 cannot be read as version 2\.0\.0 \(UserCreatedV2\): version 0\.1\.0 is not registered/),
      expect.stringMatching(/^SchemaUpcastError: .*written with schema version 3\.0\.0 cannot be read as version 2\.0\.0 \(UserCreatedV2\): the versions are not compatible .*\$\.userId type-changed: the writer may produce integer but the reader accepts string/),
    ]);
    expect(server.getMetrics()).toMatchObject({ schemaInvalid: 2, deadLettered: 2, failed: 0 });
  });

  it('a handler on an older version reads messages of a newer, forward-compatible one (downcast)', async () => {
    await schemas.registerSchema('item.added', { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] }, '1.0.0');
    await schemas.registerSchema('item.added', { type: 'object', properties: { sku: { type: 'string' }, colour: { type: 'string', default: 'black' } }, required: ['sku'] }, '1.1.0', 'full');
    @Controller()
    class ItemsV1Controller {
      readonly items: unknown[] = [];
      @StreamEvent('item.added', { schema: { version: '1.0.0' } })
      added(@Payload() item: unknown) {
        this.items.push(item);
      }
    }
    const { app } = await startConsumer(config({ consumer: { group: 'items-v1', groupStartId: '$' } }), [ItemsV1Controller]);
    apps.push(app);
    await redis.xadd(stream('item.added'), '*', 'schema', 'item.added@1.1.0', 'data', JSON.stringify({ sku: 'a', colour: 'red' }));
    await waitFor(() => app.get(ItemsV1Controller).items.length === 1);
    expect(app.get(ItemsV1Controller).items).toEqual([{ sku: 'a', colour: 'red' }]);
  });

  it('counts on consume per mode: strict dead-letters, warn handles and counts, ignore does not validate', async () => {
    await schemas.registerSchema('count.checked', { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }, '1.0.0');
    @Controller()
    class CountController {
      readonly seen: unknown[] = [];
      @StreamEvent('count.checked')
      checked(@Payload() data: unknown) {
        this.seen.push(data);
      }
    }
    const started = await Promise.all((['strict', 'warn', 'ignore'] as const).map(async (validationMode) => {
      const { app, server } = await startConsumer(config({ consumer: { group: `count-${validationMode}`, groupStartId: '$' }, schema: { validationMode } }), [CountController]);
      apps.push(app);
      return { validationMode, app, server };
    }));
    await redis.xadd(stream('count.checked'), '*', 'schema', 'count.checked@1.0.0', 'data', JSON.stringify({ n: 1 }));
    await redis.xadd(stream('count.checked'), '*', 'schema', 'count.checked@1.0.0', 'data', JSON.stringify({ n: 'one' }));
    const expected = { strict: { seen: 1, schemaInvalid: 1, deadLettered: 1 }, warn: { seen: 2, schemaInvalid: 1, deadLettered: 0 }, ignore: { seen: 2, schemaInvalid: 0, deadLettered: 0 } };
    for (const { validationMode, app, server } of started) {
      const want = expected[validationMode];
      await waitFor(() => server.getMetrics().acked + server.getMetrics().deadLettered === 2, { message: `${validationMode} to settle both` });
      expect({ seen: app.get(CountController).seen.length, schemaInvalid: server.getMetrics().schemaInvalid, deadLettered: server.getMetrics().deadLettered }).toEqual(want);
    }
  });

  it('a DTO handler gets instances also with schema.enabled off (no registry: only plainToInstance)', async () => {
    @Controller()
    class PlainUsersController {
      readonly users: unknown[] = [];
      @StreamEvent('user.plain', { schema: { type: UserCreatedV2 } })
      created(@Payload() user: UserCreatedV2) {
        this.users.push(user);
      }
    }
    const { app } = await startConsumer(testConfig(prefix, { consumer: { group: 'plain', groupStartId: '$' } }), [PlainUsersController]);
    apps.push(app);
    await redis.xadd(stream('user.plain'), '*', 'data', JSON.stringify({ userId: 'p1', email: 'p@example.com' }));
    await waitFor(() => app.get(PlainUsersController).users.length === 1);
    expect(app.get(PlainUsersController).users[0]).toBeInstanceOf(UserCreatedV2);
    expect(app.get(PlainUsersController).users[0]).toMatchObject({ userId: 'p1', plan: 'free', marketingOptIn: false });
  });
});
