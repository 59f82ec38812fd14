import { Controller, Global, Module, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { IsEmail, IsIn, IsOptional, IsString } from 'class-validator';
import { lastValueFrom } from 'rxjs';
import {
  InMemorySchemaRegistry,
  RedisStreamsClient,
  RedisStreamsServer,
  SchemaManager,
  SchemaRegistry,
  SchemaValidationError,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { Test } from '@nestjs/testing';
import { RedisStreamsEnterpriseModule, RedisStreamsExceptionFilter } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, keysMatching, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

class MemberV1 {
  @IsString() memberId!: string;
  @IsEmail() email!: string;
}

class MemberV2 {
  @IsString() memberId!: string;
  @IsEmail() email!: string;
  @IsOptional() @IsIn(['basic', 'gold']) tier: 'basic' | 'gold' = 'basic';
}

describe('the module SchemaManager drives the server and the client (real Redis)', () => {
  const prefix = uniquePrefix('schema-wiring');
  const keys = testKeys(prefix);
  const apps: INestMicroservice[] = [];
  let redis: RawRedis;
  const config = (overrides: RedisStreamsEnterpriseConfig = {}) =>
    testConfig(prefix, { ...overrides, schema: { enabled: true, validationMode: 'strict', ...overrides.schema } });

  beforeAll(() => {
    redis = rawRedis();
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it("registry 'external': emit validates and stamps, the consumer validates and upcasts, all through the provided registry", async () => {
    const registry = new InMemorySchemaRegistry();
    @Global()
    @Module({ providers: [{ provide: SchemaRegistry, useValue: registry }], exports: [SchemaRegistry] })
    class RegistryModule {}
    @Controller()
    class MembersController {
      readonly members: unknown[] = [];
      @StreamEvent('member.joined', { schema: { version: '2.0.0', type: MemberV2 } })
      joined(@Payload() member: MemberV2) {
        this.members.push(member);
      }
    }
    const moduleRef = await Test.createTestingModule({
      imports: [RegistryModule, RedisStreamsEnterpriseModule.forRoot(config({ schema: { registry: 'external' }, consumer: { group: 'members' } }))],
      controllers: [MembersController],
    }).compile();
    const server = moduleRef.get(RedisStreamsServer);
    const app = moduleRef.createNestMicroservice({ strategy: server });
    app.useLogger(['error']);
    app.useGlobalFilters(new RedisStreamsExceptionFilter());
    await app.listen();
    apps.push(app);
    const schemas = app.get(SchemaManager);
    const client = app.get(RedisStreamsClient);
    await schemas.registerSchema('member.joined', MemberV1, '1.0.0');
    await lastValueFrom(client.emit('member.joined', { memberId: 'm1', email: 'ada@example.com' }));
    await schemas.registerSchema('member.joined', MemberV2, '2.0.0');
    await lastValueFrom(client.emit('member.joined', { memberId: 'm2', email: 'bo@example.com', tier: 'gold' }));
    await expect(lastValueFrom(client.emit('member.joined', { memberId: 'm3', email: 'nope' }))).rejects.toBeInstanceOf(SchemaValidationError);
    const { members } = app.get(MembersController);
    await waitFor(() => members.length === 2, { message: 'both members' });
    // m1 may reach the handler before v2 is registered: that is retried (the handler's version is not known yet), so
    // the order can change.
    const sorted = members.map((m) => ({ ...(m as MemberV2) })).sort((x, y) => x.memberId.localeCompare(y.memberId));
    expect(sorted).toEqual([
      { memberId: 'm1', email: 'ada@example.com', tier: 'basic' },
      { memberId: 'm2', email: 'bo@example.com', tier: 'gold' },
    ]);
    expect(members.every((m) => m instanceof MemberV2)).toBe(true);
    const stamps = (await redis.xrange(keys.stream('member.joined'), '-', '+')).map(([, f]) => f[f.indexOf('schema') + 1]);
    expect(stamps).toEqual(['member.joined@1.0.0', 'member.joined@2.0.0']);
    expect(schemas.getMetrics()).toEqual({
      validationMode: 'strict',
      emit: { valid: 2, invalid: 1, skipped: 0 },
      consume: { valid: 2, invalid: 0, skipped: 0, upcast: 1, unmappable: 0 },
    });
    const schemaKeys = await keysMatching(redis, `${prefix}:{schema:*`);
    expect(schemaKeys).toEqual([]);
  });

  it('counts on emit and on consume per mode in the module SchemaManager: strict refuses, warn sends, ignore skips', async () => {
    const setup = new SchemaManager(config());
    const score = { type: 'object', properties: { points: { type: 'integer' } }, required: ['points'] };
    for (const mode of ['strict', 'warn', 'ignore']) await setup.registerSchema(`score.${mode}`, score, '1.0.0');
    await setup.close();
    const controllerFor = (pattern: string) => {
      @Controller()
      class ScoresController {
        readonly scores: unknown[] = [];
        @StreamEvent(pattern)
        posted(@Payload() data: unknown) {
          this.scores.push(data);
        }
      }
      return ScoresController;
    };
    const results: Record<string, unknown> = {};
    for (const validationMode of ['strict', 'warn', 'ignore'] as const) {
      const pattern = `score.${validationMode}`;
      const ScoresController = controllerFor(pattern);
      const { app, client, server } = await startConsumer(config({ consumer: { group: 'scores' }, schema: { validationMode } }), [ScoresController]);
      apps.push(app);
      await lastValueFrom(client.emit(pattern, { points: 1 }));
      await lastValueFrom(client.emit(pattern, { points: 'many' })).catch(() => undefined);
      const handled = validationMode === 'strict' ? 1 : 2;
      await waitFor(() => app.get(ScoresController).scores.length === handled, { message: `${validationMode} handled` });
      const { emit, consume } = app.get(SchemaManager).getMetrics();
      results[validationMode] = { emit, consume: { valid: consume.valid, invalid: consume.invalid, skipped: consume.skipped }, schemaInvalid: server.getMetrics().schemaInvalid };
    }
    expect(results).toEqual({
      strict: { emit: { valid: 1, invalid: 1, skipped: 0 }, consume: { valid: 1, invalid: 0, skipped: 0 }, schemaInvalid: 0 },
      warn: { emit: { valid: 1, invalid: 1, skipped: 0 }, consume: { valid: 1, invalid: 1, skipped: 0 }, schemaInvalid: 1 },
      ignore: { emit: { valid: 0, invalid: 0, skipped: 2 }, consume: { valid: 0, invalid: 0, skipped: 2 }, schemaInvalid: 0 },
    });
  });
});
