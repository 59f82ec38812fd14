/**
 * Health over HTTP (issue 15): a hybrid Nest app (express + the Redis Streams server) with @nestjs/terminus and
 * RedisStreamsHealthIndicator answers /health/live and /health/ready; readiness drops past a threshold and while
 * draining; a consumer user missing a command the reclaimer needs makes liveness fail with the reason, and
 * getStatus() carries the same reasons. The preflight reports CONFIG as not verified for that user, not as a failure.
 */
import { Controller, Get, HttpCode, Inject, Post, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import {
  aclSetUserArguments,
  RedisStreamsClient,
  RedisStreamsEnterpriseModule,
  RedisStreamsExceptionFilter,
  RedisStreamsHealthIndicator,
  RedisStreamsServer,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { RedisProcess } from '../support/redis-process.mjs';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

const GATE = Symbol('GATE');
const PASSWORD = 'health-test-pw';

/** Holds the handler of `health.slow` until opened. */
class Gate {
  private opened = false;
  private waiting: (() => void)[] = [];
  handled = 0;
  started = 0;

  wait(): Promise<void> {
    return this.opened ? Promise.resolve() : new Promise((resolve) => this.waiting.push(resolve));
  }

  open(): void {
    this.opened = true;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

@Controller()
class SlowController {
  constructor(@Inject(GATE) private readonly gate: Gate) {}

  @StreamEvent('health.slow')
  async slow() {
    await this.gate.wait();
    this.gate.handled++;
  }

  /** Fails once the gate opens (its retry then has to be scheduled). */
  @StreamEvent('health.fail')
  async fail() {
    this.gate.started++;
    await this.gate.wait();
    throw new Error('handler failed on purpose');
  }
}

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly streams: RedisStreamsHealthIndicator,
    private readonly server: RedisStreamsServer,
  ) {}

  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([() => this.streams.isLive()]);
  }

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.streams.isReady()]);
  }

  @Get('live-fast')
  @HealthCheck()
  liveFast() {
    return this.health.check([() => this.streams.isLive('redis-streams', { timeoutMs: 300 })]);
  }

  @Get('ready-strict')
  @HealthCheck()
  readyStrict() {
    return this.health.check([() => this.streams.isReady('redis-streams', { maxPending: 1 })]);
  }

  @Post('drain')
  @HttpCode(204)
  async drain() {
    await this.server.close();
  }
}

interface HttpApp {
  readonly app: INestApplication;
  readonly server: RedisStreamsServer;
  get(path: string): Promise<{ status: number; body: { status: string; details: Record<string, Record<string, unknown>> } }>;
  post(path: string): Promise<number>;
}

/** A hybrid app: HTTP on a free loopback port, the Redis Streams server as its microservice. */
async function startHttpApp(config: RedisStreamsEnterpriseConfig, gate: Gate): Promise<HttpApp> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisStreamsEnterpriseModule.forRoot(config), TerminusModule.forRoot({ logger: false })],
    controllers: [SlowController, HealthController],
    providers: [RedisStreamsHealthIndicator, { provide: GATE, useValue: gate }],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error'] });
  const server = app.get(RedisStreamsServer);
  app.connectMicroservice({ strategy: server }).useGlobalFilters(new RedisStreamsExceptionFilter());
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  return {
    app,
    server,
    get: async (path) => {
      const response = await fetch(`${base}${path}`);
      return { status: response.status, body: (await response.json()) as never };
    },
    post: async (path) => (await fetch(`${base}${path}`, { method: 'POST' })).status,
  };
}

/** The indicator's entry of a Terminus response. */
function entryOf(body: { details: Record<string, Record<string, unknown>> }): Record<string, unknown> & { reasons?: string[] } {
  return body.details['redis-streams'] as Record<string, unknown> & { reasons?: string[] };
}

describe('health over HTTP with Terminus (issue 15)', () => {
  describe('a consumer with every right', () => {
    const prefix = uniquePrefix('health');
    const gate = new Gate();
    let http: HttpApp;
    let client: RedisStreamsClient;
    const admin = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });

    beforeAll(async () => {
      http = await startHttpApp(testConfig(prefix), gate);
      client = new RedisStreamsClient(testConfig(prefix));
    }, 30_000);

    afterAll(async () => {
      gate.open();
      await client.close();
      await http.app.close();
      await cleanupPrefix(admin, prefix);
      admin.disconnect();
    }, 30_000);

    it('answers 200 on /health/live and /health/ready with the indicator up, and the status says why nothing is wrong', async () => {
      const live = await http.get('/health/live');
      expect(live.status).toBe(200);
      expect(entryOf(live.body)).toMatchObject({ status: 'up', state: 'connected', group: 'svc' });
      const ready = await http.get('/health/ready');
      expect(ready.status).toBe(200);
      const status = await http.server.getStatus();
      expect(status).toMatchObject({ healthy: true, reasons: [], draining: false, liveness: { ok: true, reasons: [] }, readiness: { ok: true, reasons: [] } });
      expect(status.loops.map((l) => l.name)).toEqual(['reading', 'reclaiming', 'retries and dead-lettering']);
      expect(status.preflight).toMatchObject({ serverVersion: expect.stringMatching(/^\d+\.\d+/), unverified: [] });
    });

    it('is not ready while more entries are pending than maxPending allows, with the reason; ready again once handled', async () => {
      for (let n = 0; n < 3; n++) await lastValueFrom(client.emit('health.slow', { n }));
      // All three delivered (pending 3), not just the first of them.
      const threePending = async () => (entryOf((await http.get('/health/ready-strict')).body).reasons ?? []).some((r) => r.startsWith('3 entries'));
      await waitFor(threePending, { message: 'readiness down with three entries pending' });
      const down = await http.get('/health/ready-strict');
      expect(down.status).toBe(503);
      expect(down.body.status).toBe('error');
      expect(entryOf(down.body)).toMatchObject({ status: 'down', reasons: [expect.stringMatching(/^3 entries of .*health\.slow.* are pending \(limit 1\)$/)] });
      // Liveness does not care: slow handlers are not a stuck process.
      expect((await http.get('/health/live')).status).toBe(200);
      gate.open();
      await waitFor(() => gate.handled === 3, { message: 'the three entries handled' });
      await waitFor(async () => (await http.get('/health/ready-strict')).status === 200, { message: 'ready again' });
    });

    it('is not ready while draining (preStop), and liveness stays up', async () => {
      expect(await http.post('/health/drain')).toBe(204);
      const ready = await http.get('/health/ready');
      expect(ready.status).toBe(503);
      expect(entryOf(ready.body).reasons).toEqual([expect.stringMatching(/^draining: the server is shutting down/)]);
      expect((await http.get('/health/live')).status).toBe(200);
    });
  });

  describe('a consumer user the ACL denies a command the reclaimer needs (ZRANGEBYSCORE)', () => {
    const prefix = uniquePrefix('health-acl');
    const user = `${prefix}-nozrangebyscore`;
    const admin = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
    let http: HttpApp;

    beforeAll(async () => {
      const args = aclSetUserArguments('consumer', { user, password: PASSWORD, keyPrefix: prefix }).filter((a) => a !== '+zrangebyscore');
      await admin.call('ACL', 'SETUSER', ...args);
      const url = new URL(redisUrl());
      url.username = user;
      url.password = PASSWORD;
      http = await startHttpApp(testConfig(prefix, { connection: { url: url.toString() } }), new Gate());
    }, 30_000);

    afterAll(async () => {
      await http.app.close();
      await cleanupPrefix(admin, prefix);
      await admin.call('ACL', 'DELUSER', user);
      admin.disconnect();
    }, 30_000);

    it('fails liveness with the reason (reclaim passes keep failing on NOPERM), and getStatus() carries the same reasons', async () => {
      await waitFor(async () => (await http.get('/health/live')).status === 503, { message: 'liveness down' });
      await waitFor(async () => (await http.server.getStatus()).loops.some((l) => l.name === 'reclaiming' && l.failures >= 3), {
        message: 'the reclaim passes failing three times in a row',
      });
      const live = await http.get('/health/live');
      expect(live.status).toBe(503);
      const entry = entryOf(live.body);
      expect(entry.status).toBe('down');
      expect(entry.reasons).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^Redis refuses .*rseClaimDue.* for lack of ACL rights/),
          // Redis 7.0 words a refusal inside a script "can't run this command"; later versions say NOPERM.
          expect.stringMatching(/^reclaiming keeps failing \(\d+ times in a row since \S+\): .*(NOPERM|can't run this command)/),
        ]),
      );
      expect(entry.message).toBe((entry.reasons as string[]).join('; '));
      const status = await http.server.getStatus();
      expect(status.healthy).toBe(false);
      expect(status.liveness.ok).toBe(false);
      const shape = (reasons: readonly string[]) => reasons.map((r) => r.replace(/\d+ times/, 'N times')).sort();
      expect(shape(status.liveness.reasons)).toEqual(shape(entry.reasons as string[]));
      expect(status.reasons).toEqual(expect.arrayContaining([...status.liveness.reasons]));
      // The preflight does not try CONFIG as a least-privilege user (no ACL LOG entry on every start): it says so.
      expect(status.preflight?.unverified).toEqual([expect.stringMatching(/^appendfsync: CONFIG GET is not tried as ACL user .*; check it yourself$/)]);
      expect(status.permissionProblems.map((p) => p.command)).not.toContain('CONFIG|GET');
    }, 30_000);
  });

  describe('on a throw-away Redis that runs out of memory, then stops answering', () => {
    const prefix = uniquePrefix('health-oom');
    const gate = new Gate();
    let redis: RedisProcess;
    let admin: Redis;
    let http: HttpApp;
    let client: RedisStreamsClient;

    beforeAll(async () => {
      redis = await RedisProcess.start();
      admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      const config = testConfig(prefix, { connection: { url: redis.url } });
      http = await startHttpApp(config, gate);
      client = new RedisStreamsClient(config);
    }, 30_000);

    afterAll(async () => {
      gate.open();
      await admin.config('SET', 'maxmemory', '0').catch(() => undefined);
      await client.close();
      await http.app.close();
      admin.disconnect();
      await redis.stop();
    }, 30_000);

    it('fails liveness while retries keep failing on OOM, with the reason; live again once Redis has memory', async () => {
      for (let n = 0; n < 3; n++) await lastValueFrom(client.emit('health.fail', { n }));
      await waitFor(() => gate.started === 3, { message: 'three handlers running' });
      // Every write is refused from now on (noeviction): scheduling the retries of the three failures included.
      await admin.config('SET', 'maxmemory', '1');
      gate.open();
      await waitFor(async () => (await http.server.getStatus()).loops.some((l) => l.name === 'retries and dead-lettering' && l.failures >= 3), {
        message: 'three retries in a row not scheduled',
      });
      const live = await http.get('/health/live');
      expect(live.status).toBe(503);
      expect(entryOf(live.body).reasons).toContainEqual(
        expect.stringMatching(/^retries and dead-lettering keeps failing \(\d+ times in a row since \S+\): ReplyError: OOM command not allowed/),
      );
      await admin.config('SET', 'maxmemory', '0');
      // The entries stayed pending; the reclaimer retries them and the next settlement succeeds.
      await waitFor(async () => (await http.get('/health/live')).status === 200, { timeoutMs: 15_000, message: 'live again' });
    }, 30_000);

    it('fails liveness when Redis does not answer within the timeout (CLIENT PAUSE), and recovers', async () => {
      expect((await http.get('/health/live-fast')).status).toBe(200);
      await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
      const paused = await http.get('/health/live-fast');
      expect(paused.status).toBe(503);
      expect(entryOf(paused.body).reasons).toEqual(['Redis did not answer within 300 ms']);
      await waitFor(async () => (await http.get('/health/live-fast')).status === 200, { message: 'live again after the pause' });
    }, 30_000);
  });
});
