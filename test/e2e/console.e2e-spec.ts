/**
 * The operator console (issue 17) in a real headless browser (Debian's Chromium through playwright-core) against a
 * real Redis: one hybrid Nest app (HTTP + the Redis Streams server) mounts the console twice, at /ops/console with a
 * guard and writes allowed, and at /view read-only without a guard. The pages render topics, groups with lag and
 * pending, consumers with idle time, dead letters, schema versions, mirror lag (the app's StreamMirror copies from a
 * second redis-server, region "us"); a dead letter made by a failing handler is
 * redriven by a click and then handled; delete works; a replay's progress bar reaches 100 %; read-only and the guard
 * refuse writes with 403; hostile text from Redis is shown as text.
 *
 * Screenshots for the docs: RSE_CONSOLE_SCREENSHOTS=docs writes them to docs/public/console/ (otherwise they are
 * taken and checked but not kept, so a test run does not change the repository).
 */
import { Controller, Inject, Injectable, Module, UseFilters, type CanActivate, type ExecutionContext, type INestApplication, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { lastValueFrom } from 'rxjs';
import {
  DeadLetterManager,
  isConsoleWrite,
  REDIS_STREAMS_CONSOLE_MIRROR,
  RedisStreamsClient,
  RedisStreamsConsoleModule,
  RedisStreamsContext,
  RedisStreamsEnterpriseModule,
  RedisStreamsExceptionFilter,
  RedisStreamsServer,
  SchemaManager,
  StreamEvent,
  StreamMirror,
  PartitioningManager,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { RedisProcess } from '../support/redis-process.mjs';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = fileURLToPath(new URL('../../docs/public/console/', import.meta.url));
const XSS = '<script>window.__xss = 1</script><img src=x onerror=window.__xss=2>';
const OPS = 'Bearer ops-token';
/** Not a readable key tag: its stream key is hashed. */
const HASHED = 'console <b>hashed</b> topic';
const VIEWER = 'Bearer viewer-token';

/** What the handler saw, and whether its "bug" is still there. */
@Injectable()
class Orders {
  failing = true;
  readonly handled: string[] = [];
  replayed = 0;
}

// On the controller: a hybrid app binds its microservice's handlers when it is connected, before global filters set later.
@Controller()
@UseFilters(RedisStreamsExceptionFilter)
class OrdersController {
  constructor(@Inject(Orders) private readonly orders: Orders) {}

  @StreamEvent('console.orders')
  handle(@Payload() data: { orderId: string; note?: string }, @Ctx() ctx: RedisStreamsContext) {
    if (ctx.isReplay()) {
      this.orders.replayed++;
      return;
    }
    if (this.orders.failing) throw new TypeError(`cannot book order ${data.orderId}: ${data.note ?? 'no note'}`);
    this.orders.handled.push(data.orderId);
  }
}

/** Handles the partitioned topic (its consumer holds the partitions' leases). */
@Controller()
class PaymentsController {
  @StreamEvent('console.payments')
  handle() {
    return undefined;
  }
}

/** Operators (ops token) may read and write; viewers only read; anyone else nothing. */
@Injectable()
class OpsGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const token = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers.authorization;
    return isConsoleWrite(context) ? token === OPS : token === OPS || token === VIEWER;
  }
}

/**
 * The mirror panel reads `getStatus()` of the shape StreamMirror reports; this source stands in for a mirror between
 * two regions (replication.e2e-spec.ts tests the mirror itself).
 */
const MIRROR_STATUS = {
  running: true,
  region: 'eu',
  mirrors: [
    { name: 'from-us', running: true, failing: false },
    { name: 'from-ap', running: true, failing: true, lastError: 'connect ECONNREFUSED <img src=x onerror=window.__xss=5>' },
  ],
  topics: [{ mirror: 'from-us', source: 'us:{console.orders}', target: 'eu:{console.orders}', lag: 7, copied: 1_234, lastSourceId: '1700000000000-5' }],
};

@Module({ providers: [{ provide: REDIS_STREAMS_CONSOLE_MIRROR, useValue: { getStatus: () => MIRROR_STATUS } }], exports: [REDIS_STREAMS_CONSOLE_MIRROR] })
class MirrorStatusModule {}

describe('operator console in a headless browser (issue 17)', () => {
  const prefix = uniquePrefix('console');
  let app: INestApplication;
  let base: string;
  let browser: BrowserContext;
  let page: Page;
  let userDataDir: string;
  let redis: RawRedis;
  let client: RedisStreamsClient;
  let payments: RedisStreamsClient;
  /** Region "us": its own redis-server, mirrored into the test Redis (region "eu") by the app's StreamMirror. */
  let us: RedisProcess;
  let usClient: RedisStreamsClient;
  let payer: INestMicroservice;
  const dialogs: string[] = [];

  const api = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) => fetch(`${base}${path}`, init);
  const deadLetters = () => app.get(DeadLetterManager);
  const orders = () => app.get(Orders);

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: the console's browser test needs Debian's Chromium (apt-get install chromium)`);
    redis = rawRedis();
    us = await RedisProcess.start();
    const replication = { region: 'eu', mirrors: [{ name: 'from-us', source: { region: 'us', connection: { url: us.url } }, topics: ['console.mirrored'], blockMs: 100 }] };
    const config = testConfig(prefix, { replay: { enabled: true }, replication });
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisStreamsEnterpriseModule.forRoot({ ...config, isGlobal: true }),
        RedisStreamsConsoleModule.register({
          path: '/ops/console',
          guard: OpsGuard,
          writes: true,
          imports: [MirrorStatusModule],
          actor: (request) => (request.headers.authorization === OPS ? 'console:ops@example' : undefined),
        }),
        RedisStreamsConsoleModule.register({ path: '/view' }),
      ],
      controllers: [OrdersController],
      providers: [Orders],
    }).compile();
    app = moduleRef.createNestApplication({ logger: ['error'] });
    app.connectMicroservice({ strategy: app.get(RedisStreamsServer) });
    await app.startAllMicroservices();
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
    client = new RedisStreamsClient(testConfig(prefix));

    // Three orders that fail until "fixed": three dead letters, one with hostile text in its payload and error.
    await lastValueFrom(client.emit('console.orders', { orderId: 'A-1' }));
    await lastValueFrom(client.emit('console.orders', { orderId: 'B-2', note: XSS }));
    await lastValueFrom(client.emit('console.orders', { orderId: 'C-3' }));
    await waitFor(async () => (await deadLetters().count('console.orders')) === 3, { message: 'three dead letters', timeoutMs: 15_000 });
    // A reporting group nobody serves well: lag 4, two entries pending with a stuck consumer; a hostile group name.
    const reports = `${prefix}:{console.reports}`;
    for (let n = 0; n < 6; n++) await redis.xadd(reports, '*', 'pattern', 'console.reports', 'data', JSON.stringify({ n }));
    await redis.xgroup('CREATE', reports, 'reporting', '0');
    await redis.xreadgroup('GROUP', 'reporting', 'stuck-worker', 'COUNT', 2, 'STREAMS', reports, '>');
    await redis.xgroup('CREATE', reports, '<img src=x onerror="window.__xss = 3">', '$');
    // A partitioned topic nobody consumes yet, and a pattern whose key tag is hashed (its name comes from its entries).
    payments = new RedisStreamsClient(testConfig(prefix, { partitioning: { enabled: true, partitionCount: 3, partitionKey: 'accountId' } }));
    for (let n = 0; n < 9; n++) await lastValueFrom(payments.emit('console.payments', { accountId: `acc-${n}`, amount: n }));
    const payerConfig = testConfig(prefix, { consumer: { group: 'pay', consumerName: 'pay-worker-1' }, partitioning: { enabled: true, partitionCount: 3, partitionKey: 'accountId' } });
    payer = (await startConsumer(payerConfig, [PaymentsController])).app;
    const stats = () => app.get(PartitioningManager).getPartitionStats('console.payments', 'pay');
    await waitFor(async () => (await stats()).every((p) => p.owner === 'pay-worker-1' && p.lag === 0 && p.pending === 0), { message: 'the payer owns every partition and is done' });
    await lastValueFrom(client.emit(HASHED, { hello: 'world' }));
    usClient = new RedisStreamsClient(testConfig(prefix, { connection: { url: us.url } }));
    for (let n = 0; n < 5; n++) await lastValueFrom(usClient.emit('console.mirrored', { n }));
    await app.get(SchemaManager).registerSchema('console.orders', { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] }, '1.0.0');
    await app.get(SchemaManager).registerSchema('console.orders', { type: 'object', properties: { orderId: { type: 'string' }, note: { type: 'string' } }, required: ['orderId'] }, '1.1.0');

    userDataDir = mkdtempSync(join(tmpdir(), 'rse-console-chromium-'));
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
      extraHTTPHeaders: { authorization: OPS },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    await client?.close();
    await payments?.close();
    await payer?.close();
    await usClient?.close();
    await app?.close();
    await us?.stop();
    if (redis) {
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
    }
  }, 30_000);

  async function open(path: string): Promise<void> {
    await page.goto(`${base}${path}`);
    await page.waitForSelector('body[data-loaded="true"]');
  }

  async function screenshot(name: string, target: Page | ReturnType<Page['locator']> = page): Promise<void> {
    const png = await target.screenshot({ animations: 'disabled' } as never);
    expect(png.length).toBeGreaterThan(1_000);
    if (process.env.RSE_CONSOLE_SCREENSHOTS === 'docs') writeFileSync(join(SCREENSHOTS, name), png);
  }

  it('serves the page with a strict Content-Security-Policy and renders topics, groups with lag and pending, consumers, dead letters and schemas', async () => {
    const response = await api('/ops/console', { headers: { authorization: OPS } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');

    await open('/ops/console');
    const orderRow = page.locator('#topics tr[data-topic="console.orders"]');
    expect(await orderRow.locator('td[data-col="length"]').textContent()).toBe('3');
    const paymentsRow = page.locator('#topics tr[data-topic="console.payments"]');
    expect(await paymentsRow.locator('td[data-col="partitions"]').textContent()).toBe('3');
    expect(await paymentsRow.locator('td[data-col="length"]').textContent()).toBe('9');
    expect(await paymentsRow.locator('td[data-col="per-partition"]').textContent()).toMatch(/^p0: \d, p1: \d, p2: \d$/);
    expect(await page.locator('#topics td[data-col="pattern"]', { hasText: HASHED }).count()).toBe(1);
    const partition2 = page.locator('#groups tr[data-topic="console.payments"][data-group="pay"][data-partition="2"]');
    expect(await partition2.locator('td[data-col="owner"]').textContent()).toBe('pay-worker-1');
    expect(await partition2.locator('td[data-col="consumers"]').textContent()).toMatch(/^pay-worker-1 · pending 0 · idle/);
    const reporting = page.locator('#groups tr[data-topic="console.reports"][data-group="reporting"]');
    expect(await reporting.locator('td[data-col="lag"]').textContent()).toBe('4');
    expect(await reporting.locator('td[data-col="pending"]').textContent()).toBe('2');
    expect(await reporting.locator('td[data-col="consumers"]').textContent()).toMatch(/stuck-worker · pending 2 · idle \d/);
    expect(await page.locator('#groups tr[data-topic="console.orders"][data-group="svc"] td[data-col="pending"]').textContent()).toBe('0');
    expect(await page.locator('#dl-table tbody tr').count()).toBe(3);
    expect(await page.locator('#schemas tr[data-event-type="console.orders"] button.version').allTextContents()).toEqual(['1.1.0', '1.0.0']);
    const mirrorRow = page.locator('#mirror tbody tr');
    expect(await mirrorRow.locator('td[data-col="lag"]').textContent()).toBe('7');
    expect(await mirrorRow.textContent()).toContain('us:{console.orders}');
    expect(await page.locator('#mirror').textContent()).toContain('mirror from-ap is failing: connect ECONNREFUSED <img src=x onerror=window.__xss=5>');
    expect(await page.locator('#mode').textContent()).toBe('writes allowed');
    await screenshot('console-overview.png');
    await page.locator('#schemas button.version', { hasText: '1.1.0' }).click();
    await page.waitForSelector('#schema-detail:not([hidden])');
    expect(await page.locator('#schema-detail').textContent()).toContain('"note"');
  });

  it('shows hostile text from Redis as text: no script runs, no element is injected', async () => {
    const row = page.locator('#dl-table tbody tr', { hasText: 'B-2' });
    expect(await row.locator('td[data-col="payload"]').textContent()).toContain(XSS);
    expect(await row.locator('td[data-col="error"]').textContent()).toContain(`TypeError: cannot book order B-2: ${XSS}`);
    await row.locator('button.inspect').click();
    await page.waitForSelector('#dl-detail table');
    expect(await page.locator('#dl-detail').textContent()).toContain('<script>window.__xss = 1</script>');
    expect(await page.locator('#groups').textContent()).toContain('<img src=x onerror="window.__xss = 3">');
    expect(await page.evaluate(() => ({ xss: (window as { __xss?: number }).__xss, images: document.images.length, scripts: document.scripts.length }))).toEqual({ xss: undefined, images: 0, scripts: 1 });
    expect(dialogs).toEqual([]);
    await screenshot('console-dead-letters.png', page.locator('#dead-letters'));
  });

  it('redrives a dead letter by a click; the fixed handler then handles it; delete removes another', async () => {
    orders().failing = false;
    const a = page.locator('#dl-table tbody tr', { hasText: 'A-1' });
    await a.locator('button.redrive').click();
    await waitFor(() => orders().handled.includes('A-1'), { message: 'the redriven order handled' });
    await page.locator('#notice', { hasText: 'Redrove 1 dead letter(s).' }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('#dl-table tbody tr').length === 2);
    expect(await deadLetters().count('console.orders')).toBe(2);

    const c = page.locator('#dl-table tbody tr', { hasText: 'C-3' });
    await c.locator('button.delete').click();
    expect(await c.locator('button.delete').textContent()).toBe('Confirm delete');
    expect(await deadLetters().count('console.orders')).toBe(2); // the first click only arms the button
    await c.locator('button.delete').click();
    await page.waitForFunction(() => document.querySelectorAll('#dl-table tbody tr').length === 1);
    const left = await deadLetters().list('console.orders');
    expect(left.map((l) => (l.data as { orderId: string }).orderId)).toEqual(['B-2']);
    expect(orders().handled).toEqual(['A-1']);
  });

  it('runs a replay from the console with a progress bar that reaches 100 %; the audit panel lists the writes with their actor', async () => {
    await page.fill('#replay-pattern', 'console.orders');
    await page.click('#replay-start-button');
    const done = page.locator('#replay-jobs tr[data-state="done"]');
    await done.waitFor();
    expect(await done.locator('progress').getAttribute('value')).toBe('100');
    // The stream holds the three originals and the redriven copy: all four go to the handler again.
    expect(await done.locator('td.progress-text').textContent()).toMatch(/^100 % · read 4 · replayed 4 · skipped 0 · failed 0 · stopped by end$/);
    expect(orders().replayed).toBe(4);
    // Every write so far is in the audit trail, with the operator the actor option named.
    await page.click('#refresh');
    await page.locator('#audit tr[data-audit]').nth(4).waitFor();
    const audit = await page.locator('#audit tr[data-audit]').evaluateAll((rows) =>
      rows.map((r) => ['actor', 'action', 'result'].map((col) => r.querySelector(`td[data-col="${col}"]`)?.textContent)),
    );
    // The schema registrations of the set-up come first, by this process (compliance.actor's default).
    expect(audit.slice(0, 2).map(([actor, action]) => [actor?.startsWith('process:'), action])).toEqual([[true, 'schema.register'], [true, 'schema.register']]);
    expect(audit.slice(2)).toEqual([
      ['console:ops@example', 'dlq.redrive', 'ok'],
      ['console:ops@example', 'dlq.delete', 'ok'],
      ['console:ops@example', 'replay.handlers', 'ok'],
    ]);
    await screenshot('console-replay.png', page.locator('#replay'));
  });

  it('read-only: the page has no write controls and the API refuses writes with 403', async () => {
    await open('/view');
    expect(await page.locator('#mode').textContent()).toBe('read-only');
    // This console shows the app's own StreamMirror: region us copied into this one, caught up.
    const mirror = app.get(StreamMirror);
    await waitFor(() => mirror.getStatus().topics.some((t) => t.copied === 5 && t.lag === 0), { message: 'the mirror caught up' });
    await page.click('#refresh');
    const mirrored = page.locator('#mirror tbody tr', { hasText: 'from-us' });
    await mirrored.waitFor();
    expect(await mirrored.locator('td[data-col="lag"]').textContent()).toBe('0');
    expect(await mirrored.locator('td[data-col="copied"]').textContent()).toBe('5');
    expect(await page.locator('#mirror').textContent()).toContain('running into region eu');
    expect(await page.locator('#dl-table tbody tr').count()).toBe(1);
    expect(await page.locator('#dead-letters button.redrive, #dead-letters button.delete').count()).toBe(0);
    expect(await page.locator('#replay-form').isHidden()).toBe(true);
    const [id] = (await deadLetters().list('console.orders')).map((l) => l.dlqId);
    const headers = { 'content-type': 'application/json', 'x-rse-console': '1' };
    const redrive = await api('/view/api/dead-letters/redrive', { method: 'POST', headers, body: JSON.stringify({ pattern: 'console.orders', ids: [id] }) });
    expect(redrive.status).toBe(403);
    expect(((await redrive.json()) as { message: string }).message).toMatch(/read-only/);
    expect((await api(`/view/api/dead-letters?pattern=console.orders&ids=${id}`, { method: 'DELETE', headers })).status).toBe(403);
    expect((await api('/view/api/replay', { method: 'POST', headers, body: JSON.stringify({ pattern: 'console.orders' }) })).status).toBe(403);
    expect(await deadLetters().count('console.orders')).toBe(1);
  });

  it('the guard: no token → 403 everywhere; a viewer reads but cannot write; writes need the console header and the same origin', async () => {
    expect((await api('/ops/console')).status).toBe(403);
    expect((await api('/ops/console/api/topics')).status).toBe(403);
    expect((await api('/ops/console/assets/console.js')).status).toBe(403);
    expect((await api('/ops/console/api/groups', { headers: { authorization: VIEWER } })).status).toBe(200);
    const [id] = (await deadLetters().list('console.orders')).map((l) => l.dlqId);
    const body = JSON.stringify({ pattern: 'console.orders', ids: [id] });
    const post = (headers: Record<string, string>) => api('/ops/console/api/dead-letters/redrive', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    expect((await post({ authorization: VIEWER, 'x-rse-console': '1' })).status).toBe(403);
    expect((await post({ authorization: OPS })).status).toBe(403); // no console header: a form post from another site
    expect((await post({ authorization: OPS, 'x-rse-console': '1', origin: 'http://evil.example' })).status).toBe(403);
    expect((await post({ authorization: OPS, 'x-rse-console': '1', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect(await deadLetters().count('console.orders')).toBe(1);
    const allowed = await post({ authorization: OPS, 'x-rse-console': '1', origin: base });
    expect(allowed.status).toBe(200);
    expect(((await allowed.json()) as { redriven: unknown[] }).redriven).toHaveLength(1);
    await waitFor(() => orders().handled.includes('B-2'), { message: 'the last dead letter handled after its redrive' });
  });
});
