import { Controller, Global, Module, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { IsInt, IsString, Max, Min } from 'class-validator';
import { lastValueFrom } from 'rxjs';
import { z } from 'zod';
import {
  InMemorySchemaRegistry,
  RedisStreamsClient,
  RedisStreamsEnterpriseModule,
  SchemaManager,
  SchemaRegistry,
  SchemaRegistryMissingError,
  SchemaValidationError,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, keysMatching, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

class RatingGiven {
  @IsString() productId!: string;
  @IsInt() @Min(1) @Max(5) stars!: number;
}

describe('schema registries (real Redis)', () => {
  const prefix = uniquePrefix('schema-registry');
  const keys = testKeys(prefix);
  const apps: INestMicroservice[] = [];
  const closers: { close(): Promise<void> }[] = [];
  let redis: RawRedis;
  const config = (overrides: RedisStreamsEnterpriseConfig = {}) =>
    testConfig(prefix, { ...overrides, schema: { enabled: true, validationMode: 'strict', ...overrides.schema } });
  const stamps = async (pattern: string) => (await redis.xrange(keys.stream(pattern), '-', '+')).map(([, f]) => f[f.indexOf('schema') + 1]);

  beforeAll(() => {
    redis = rawRedis();
  });

  afterAll(async () => {
    for (const c of closers) await c.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  describe("registry: 'external'", () => {
    const external = config({ schema: { registry: 'external' } });

    it('fails the application start with a clear error when no SchemaRegistry is provided', async () => {
      const compiling = Test.createTestingModule({ imports: [RedisStreamsEnterpriseModule.forRoot(external)] }).compile();
      await expect(compiling).rejects.toThrow(SchemaRegistryMissingError);
      await expect(Test.createTestingModule({ imports: [RedisStreamsEnterpriseModule.forRoot(external)] }).compile()).rejects.toThrow(
        /schema\.registry 'external' but no SchemaRegistry implementation was provided/,
      );
    });

    it('uses the SchemaRegistry the application provides (global module, or forRootAsync imports), and stores nothing in Redis', async () => {
      const registry = new InMemorySchemaRegistry();
      @Global()
      @Module({ providers: [{ provide: SchemaRegistry, useValue: registry }], exports: [SchemaRegistry] })
      class GlobalRegistryModule {}
      const viaGlobal = await Test.createTestingModule({ imports: [GlobalRegistryModule, RedisStreamsEnterpriseModule.forRoot(external)] }).compile();
      const schemas = viaGlobal.get(SchemaManager);
      expect(schemas.registry).toBe(registry);
      await schemas.registerSchema('rating.given', RatingGiven, '1.0.0');
      expect(await registry.listVersions('rating.given')).toEqual(['1.0.0']);
      expect((await schemas.validate('rating.given', { productId: 'p', stars: 9 })).issues).toEqual([expect.objectContaining({ path: '$.stars' })]);
      await viaGlobal.close();

      @Module({ providers: [{ provide: SchemaRegistry, useValue: registry }], exports: [SchemaRegistry] })
      class RegistryModule {}
      const viaImports = await Test.createTestingModule({
        imports: [RedisStreamsEnterpriseModule.forRootAsync({ imports: [RegistryModule], useFactory: () => external })],
      }).compile();
      expect(await viaImports.get(SchemaManager).listVersions('rating.given')).toEqual(['1.0.0']);
      await viaImports.close();
      const schemaKeys = await keysMatching(redis, `${prefix}:{schema:*`);
      expect(schemaKeys).toEqual([]);
    });
  });

  it('two app instances: one registers v2, the other validates, stamps and consumes with it without restart', async () => {
    const v1 = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] };
    const v2 = { type: 'object', properties: { id: { type: 'string' }, currency: { enum: ['EUR', 'USD'], default: 'EUR' } }, required: ['id'] };
    @Controller()
    class InvoicesController {
      readonly invoices: unknown[] = [];
      @StreamEvent('invoice.sent')
      sent(@Payload() invoice: unknown) {
        this.invoices.push(invoice);
      }
    }
    const a = await startConsumer(config({ consumer: { group: 'invoices-a' } }), [InvoicesController]);
    const b = await startConsumer(config({ consumer: { group: 'invoices-b' } }), [InvoicesController]);
    apps.push(a.app, b.app);
    const schemasA = a.app.get(SchemaManager);
    const schemasB = b.app.get(SchemaManager);
    await schemasA.registerSchema('invoice.sent', v1, '1.0.0');
    await lastValueFrom(b.client.emit('invoice.sent', { id: 'i1', currency: 'XXX' })); // fine under v1 (open schema)
    await schemasA.registerSchema('invoice.sent', v2, '2.0.0', 'full');
    // B's manager, producer and consumer see v2 within the one-second "latest" cache, without restart.
    await waitFor(async () => (await schemasB.listVersions('invoice.sent')).includes('2.0.0'), { message: 'B to list v2' });
    await waitFor(
      async () => {
        await lastValueFrom(b.client.emit('invoice.sent', { id: 'i2', currency: 'USD' }));
        return (await stamps('invoice.sent')).at(-1) === 'invoice.sent@2.0.0';
      },
      { timeoutMs: 5_000, intervalMs: 200, message: "B's producer to stamp v2" },
    );
    const refused = await lastValueFrom(b.client.emit('invoice.sent', { id: 'i3', currency: 'XXX' })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SchemaValidationError);
    expect((refused as SchemaValidationError).issues).toEqual([expect.objectContaining({ path: '$.currency' })]);
    // A v2-stamped entry that breaks v2 is dead-lettered by B's consumer, which had never loaded v2 before.
    await redis.xadd(keys.stream('invoice.sent'), '*', 'schema', 'invoice.sent@2.0.0', 'data', JSON.stringify({ id: 'i4', currency: 'XXX' }));
    const sentOk = (await stamps('invoice.sent')).length - 1;
    await waitFor(() => b.server.getMetrics().acked + b.server.getMetrics().deadLettered === sentOk + 1, { message: 'B to settle every entry' });
    expect(b.server.getMetrics()).toMatchObject({ schemaInvalid: 1, deadLettered: 1 });
    expect(b.app.get(InvoicesController).invoices.at(-1)).toEqual({ id: 'i2', currency: 'USD' });
  });

  it('a zod schema, a class-validator DTO and a JSON Schema side by side, on the wire', async () => {
    const schemas = new SchemaManager(config());
    closers.push(schemas);
    await schemas.registerSchema('signup.zod', z.object({ email: z.string().email(), age: z.number().int().min(18) }), '1.0.0');
    await schemas.registerSchema('rating.dto', RatingGiven, '1.0.0');
    await schemas.registerSchema('audit.json', { type: 'object', properties: { at: { type: 'string', format: 'date-time' } }, required: ['at'] }, '1.0.0');
    @Controller()
    class MixedController {
      readonly seen: Record<string, unknown[]> = { zod: [], dto: [], json: [] };
      @StreamEvent('signup.zod')
      signup(@Payload() data: unknown) {
        this.seen.zod.push(data);
      }
      @StreamEvent('rating.dto', { schema: { type: RatingGiven } })
      rating(@Payload() data: RatingGiven) {
        this.seen.dto.push(data);
      }
      @StreamEvent('audit.json')
      audit(@Payload() data: unknown) {
        this.seen.json.push(data);
      }
    }
    const { app, client } = await startConsumer(config({ consumer: { group: 'mixed' } }), [MixedController]);
    apps.push(app);
    const invalid: [string, unknown, string][] = [
      ['signup.zod', { email: 'ada@example.com', age: 12 }, '$.age'],
      ['rating.dto', { productId: 'p1', stars: 6 }, '$.stars'],
      ['audit.json', { at: 'yesterday' }, '$.at'],
    ];
    for (const [pattern, data, path] of invalid) {
      const error = await lastValueFrom(client.emit(pattern, data)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaValidationError);
      expect((error as SchemaValidationError).issues).toEqual([expect.objectContaining({ path })]);
    }
    await lastValueFrom(client.emit('signup.zod', { email: 'ada@example.com', age: 36 }));
    await lastValueFrom(client.emit('rating.dto', { productId: 'p1', stars: 5 }));
    await lastValueFrom(client.emit('audit.json', { at: '2026-01-01T00:00:00Z' }));
    const { seen } = app.get(MixedController);
    await waitFor(() => seen.zod.length + seen.dto.length + seen.json.length === 3, { message: 'one of each' });
    expect(seen).toEqual({ zod: [{ email: 'ada@example.com', age: 36 }], dto: [expect.any(RatingGiven)], json: [{ at: '2026-01-01T00:00:00Z' }] });
    expect(await stamps('signup.zod')).toEqual(['signup.zod@1.0.0']);
    expect(await stamps('rating.dto')).toEqual(['rating.dto@1.0.0']);
  });
});
