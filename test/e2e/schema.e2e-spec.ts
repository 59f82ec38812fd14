import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { IsEmail, IsInt, IsOptional, IsString, Min } from 'class-validator';
import { lastValueFrom } from 'rxjs';
import { z } from 'zod';
import {
  DeadLetterManager,
  RedisStreamsClient,
  SchemaManager,
  SchemaRegistrationError,
  SchemaValidationError,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

class OrderPlacedV1 {
  @IsString() orderId!: string;
  @IsInt() @Min(1) quantity!: number;
}

@Injectable()
class Inbox {
  readonly orders: unknown[] = [];
}

@Controller()
class OrdersController {
  constructor(@Inject(Inbox) private readonly inbox: Inbox) {}

  @StreamEvent('order.placed')
  placed(@Payload() order: unknown) {
    this.inbox.orders.push(order);
  }
}

describe('schema registry and validation (real Redis)', () => {
  const prefix = uniquePrefix('schema');
  const keys = testKeys(prefix);
  const apps: INestMicroservice[] = [];
  const closers: { close(): Promise<void> }[] = [];
  let redis: RawRedis;
  const config = (overrides: RedisStreamsEnterpriseConfig = {}) =>
    testConfig(prefix, { ...overrides, schema: { enabled: true, validationMode: 'strict', ...overrides.schema } });
  const manager = (overrides: RedisStreamsEnterpriseConfig = {}) => {
    const m = new SchemaManager(config(overrides));
    closers.push(m);
    return m;
  };

  beforeAll(() => {
    redis = rawRedis();
  });

  afterAll(async () => {
    for (const c of closers) await c.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('registers a DTO, a zod schema and a JSON Schema side by side; an identical registration is a no-op', async () => {
    const schemas = manager();
    const dto = await schemas.registerSchema('order.placed', OrderPlacedV1, '1.0.0');
    expect(dto.version).toBe('1.0.0');
    expect(dto.schema).toMatchObject({ type: 'object', required: expect.arrayContaining(['orderId', 'quantity']) });
    const userCreated = z.object({ userId: z.string(), email: z.string().email(), name: z.string() });
    await schemas.registerSchema('user.created', userCreated, '1.0.0', 'backward');
    await schemas.registerSchema('audit.logged', { type: 'object', properties: { at: { type: 'string' } }, required: ['at'] }, '1');
    expect((await schemas.registerSchema('order.placed', OrderPlacedV1, '9.9.9')).version).toBe('1.0.0'); // same schema
    expect(await schemas.listVersions('order.placed')).toEqual(['1.0.0']);
    const { issues } = await schemas.validate('user.created', { userId: 'u1', email: 'not-an-email', name: 'Ada' });
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.every((i) => i.path === '$.email')).toBe(true);
  });

  it('refuses an incompatible version with the breaking changes, and accepts a compatible one', async () => {
    const schemas = manager();
    const v2 = { type: 'object', properties: { orderId: { type: 'string' }, quantity: { type: 'integer', minimum: 1 }, note: { type: 'string', default: '' } }, required: ['orderId', 'quantity'] };
    await expect(schemas.checkCompatibility('order.placed', v2)).resolves.toMatchObject({ compatible: true });
    await schemas.registerSchema('order.placed', v2, '1.1.0', 'backward');
    const breaking = { type: 'object', properties: { orderId: { type: 'string' }, quantity: { type: 'integer' }, customerId: { type: 'string' } }, required: ['orderId', 'quantity', 'customerId'] };
    const error = await schemas.registerSchema('order.placed', breaking, '2.0.0', 'backward').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaRegistrationError);
    expect((error as SchemaRegistrationError).breakingChanges).toEqual(expect.arrayContaining([expect.objectContaining({ path: expect.stringContaining('customerId') })]));
    expect(await schemas.listVersions('order.placed')).toEqual(['1.0.0', '1.1.0']);
  });

  it('strict: emit refuses an invalid payload (nothing written); the consumer dead-letters an invalid message and handles valid ones', async () => {
    const { app } = await startConsumer(config({ consumer: { group: 'orders' } }), [OrdersController], [Inbox]);
    apps.push(app);
    const client = new RedisStreamsClient(config());
    closers.push(client);
    const before = await redis.xlen(keys.stream('order.placed'));
    const refused = await lastValueFrom(client.emit('order.placed', { orderId: 'o-1', quantity: 0 })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SchemaValidationError);
    expect((refused as SchemaValidationError).issues).toEqual([expect.objectContaining({ path: '$.quantity' })]);
    expect(await redis.xlen(keys.stream('order.placed'))).toBe(before);
    await lastValueFrom(client.emit('order.placed', { orderId: 'o-2', quantity: 2 }));
    // A producer that skips validation (another language, a buggy service) stamps a version and sends garbage.
    await redis.xadd(keys.stream('order.placed'), '*', 'schema', 'order.placed@1.1.0', 'data', JSON.stringify({ orderId: 7 }));
    await waitFor(() => app.get(Inbox).orders.length === 1, { message: 'the valid order' });
    const letters = new DeadLetterManager(config());
    closers.push(letters);
    await waitFor(async () => (await letters.list('order.placed', { reason: 'schema-invalid' })).length === 1, { message: 'the dead letter' });
    const [letter] = await letters.list('order.placed', { reason: 'schema-invalid' });
    expect(letter.errorName).toBe('SchemaValidationError');
    expect(letter.errorMessage).toMatch(/\$\.orderId .*string/);
    expect(app.get(Inbox).orders).toEqual([{ orderId: 'o-2', quantity: 2 }]);
  });

  it('a producer on v1 and a consumer on v2 (optional field with a default added) exchange messages, and the reverse', async () => {
    const schemas = manager();
    const v1 = { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] };
    const v2 = { type: 'object', properties: { sku: { type: 'string' }, colour: { type: 'string', default: 'black' } }, required: ['sku'] };
    await schemas.registerSchema('item.added', v1, '1.0.0');
    // An old producer stamps v1 (it validated against v1 before v2 existed).
    await redis.xadd(keys.stream('item.added'), '*', 'schema', 'item.added@1.0.0', 'data', JSON.stringify({ sku: 'a' }));
    await schemas.registerSchema('item.added', v2, '1.1.0', 'full');
    @Controller()
    class ItemsController {
      readonly items: unknown[] = [];
      @StreamEvent('item.added')
      added(@Payload() item: unknown) {
        this.items.push(item);
      }
    }
    const { app } = await startConsumer(config({ consumer: { group: 'items' } }), [ItemsController]);
    apps.push(app);
    // A new producer validates against and stamps v2.
    const client = new RedisStreamsClient(config());
    closers.push(client);
    await waitFor(async () => (await schemas.latestVersion('item.added')) === '1.1.0');
    await lastValueFrom(client.emit('item.added', { sku: 'b', colour: 'red' }));
    await waitFor(() => app.get(ItemsController).items.length === 2, { message: 'both messages' });
    expect(app.get(ItemsController).items).toEqual([{ sku: 'a' }, { sku: 'b', colour: 'red' }]);
    const [, fields] = (await redis.xrange(keys.stream('item.added'), '-', '+')).at(-1) as [string, string[]];
    expect(fields[fields.indexOf('schema') + 1]).toBe('item.added@1.1.0');
    // v2 data is also valid v1 data (full compatibility: an old consumer reads new messages).
    expect((await schemas.validate('item.added', { sku: 'b', colour: 'red' }, '1.0.0')).issues).toEqual([]);
  });

  it('warn mode handles an invalid message and counts it; ignore mode does not validate', async () => {
    @Controller()
    class LenientController {
      readonly seen: unknown[] = [];
      @StreamEvent('order.placed')
      placed(@Payload() order: unknown) {
        this.seen.push(order);
      }
    }
    const { app, server } = await startConsumer(config({ consumer: { group: 'lenient', groupStartId: '$' }, schema: { validationMode: 'warn' } }), [LenientController]);
    apps.push(app);
    await redis.xadd(keys.stream('order.placed'), '*', 'schema', 'order.placed@1.1.0', 'data', JSON.stringify({ orderId: 8 }));
    await waitFor(() => app.get(LenientController).seen.length === 1, { message: 'the invalid message, handled' });
    expect(server.getMetrics().schemaInvalid).toBe(1);
    const ignoring = new RedisStreamsClient(config({ schema: { validationMode: 'ignore' } }));
    closers.push(ignoring);
    await expect(lastValueFrom(ignoring.emit('order.placed', { orderId: 9 }))).resolves.toMatch(/^\d+-\d+$/);
  });

  it('another instance sees a newly registered version without restart', async () => {
    const a = manager();
    const b = manager();
    expect(await b.latestVersion('invoice.sent')).toBeNull();
    await a.registerSchema('invoice.sent', { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }, '1.0.0');
    await waitFor(async () => (await b.latestVersion('invoice.sent')) === '1.0.0', { timeoutMs: 3_000, message: 'b to see it' });
  });

  it('autoEvolution assigns versions by the versioning strategy', async () => {
    const schemas = manager({ schema: { autoEvolution: true, versioningStrategy: 'incremental' } });
    await schemas.registerSchema('ticket.opened', { type: 'object', properties: { id: { type: 'string' } } });
    await schemas.registerSchema('ticket.opened', { type: 'object', properties: { id: { type: 'string' }, title: { type: 'string' } } });
    expect(await schemas.listVersions('ticket.opened')).toEqual(['1', '2']);
    await expect(manager().registerSchema('ticket.closed', { type: 'object' })).rejects.toThrow(/autoEvolution is off/);
  });
});
