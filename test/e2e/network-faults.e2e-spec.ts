import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, StreamEvent, type RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, redisUrl, uniquePrefix, type RawRedis } from '../support/redis.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { testKeys } from '../support/keys.js';
import { HandlingLog, reckon } from '../support/ledger.js';
import { expectNothingWithin, waitFor } from '../support/wait-for.js';

/*
 * Network faults between the transport and Redis, made by a TCP proxy (test/support/tcp-proxy.ts): connection
 * resets, a black-holed link (reliability.md F3: a half-open connection leaves a blocking read pending forever),
 * and a slow link. Every test keeps a ledger: an emit that resolved was acknowledged by Redis and must be handled
 * (lost = 0); an emit that failed is retried and counted as indeterminate (it may or may not have been stored);
 * duplicates are reported and bounded.
 */

const PATTERN = 'jobs.net';
const CLAIM_IDLE_MS = 2_000;
const BLOCK_MS = 200;
const WATCHDOG_MS = 1_000;
const CONCURRENCY = 64;
/** A stalled blocking read is replaced after BLOCK + watchdog; then a reconnect (at most 2 s backoff) and a read. */
const RESUME_BOUND_MS = 6_000;
/** How long the producer's link stalls with emits in flight. */
const STALL_MS = 2_000;
/** An emit settles (resolves or fails) within this: the stall it was caught in, then the reset and a reconnect. */
const EMIT_SETTLE_BOUND_MS = STALL_MS + 3_000;

/** The length of a fault (not a wait for an outcome: outcomes are polled with waitFor). */
const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** n -> times handled. */
@Injectable()
class Ledger extends HandlingLog {
  /** Handled at least one message numbered `from` or later. */
  handledFrom(from: number): boolean {
    return this.some((n) => n >= from);
  }
}

@Controller()
class JobsController {
  constructor(@Inject(Ledger) private readonly ledger: Ledger) {}

  @StreamEvent(PATTERN)
  async handle(@Payload() data: { n: number }) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.ledger.record(data.n);
  }
}

/**
 * The producer's side of the ledger. Each message n is emitted until one emit resolves; failed attempts are
 * indeterminate (the XADD may have been stored before the connection broke). `longestSettleMs` is the longest any
 * single emit took to resolve or reject.
 */
class Producer {
  next = 0;
  readonly acked = new Set<number>();
  indeterminate = 0;
  /** Failed attempts by error text. */
  readonly errors = new Map<string, number>();
  longestSettleMs = 0;
  inFlight = 0;
  private stopped = false;
  private readonly workers: Promise<void>[] = [];

  constructor(
    private readonly client: RedisStreamsClient,
    private readonly pattern: string,
  ) {}

  /** `workers` loops emitting one message at a time each, pausing `pauseMs` between messages. */
  start(workers: number, pauseMs: number): void {
    for (let i = 0; i < workers; i++) this.workers.push(this.run(pauseMs));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
  }

  private async run(pauseMs: number): Promise<void> {
    while (!this.stopped) {
      const n = this.next++;
      for (;;) {
        const started = Date.now();
        this.inFlight++;
        try {
          await lastValueFrom(this.client.emit(this.pattern, { n }));
          this.acked.add(n);
          break;
        } catch (error) {
          this.indeterminate++;
          const text = `${(error as Error).name}: ${(error as Error).message}`;
          this.errors.set(text, (this.errors.get(text) ?? 0) + 1);
          if (this.stopped) break;
          await hold(20); // emit fails fast while the connection is down: do not spin
        } finally {
          this.inFlight--;
          this.longestSettleMs = Math.max(this.longestSettleMs, Date.now() - started);
        }
      }
      await hold(pauseMs);
    }
  }
}

/** Lost: acknowledged and never handled. Duplicates: messages handled more than once (acknowledged or not). */
function tally(producer: Producer, ledger: Ledger) {
  const { lost, duplicated } = reckon(ledger, producer.acked);
  return { lost, duplicates: duplicated.length };
}

/** The figures of a run, printed for the record (resume times, duplicates, indeterminate emits). */
function report(what: string, producer: Producer, figures: Record<string, unknown>): void {
  const summary = { acked: producer.acked.size, indeterminate: producer.indeterminate, longestEmitMs: producer.longestSettleMs, ...figures };
  process.stdout.write(`[network-faults] ${what}: ${JSON.stringify(summary)} errors=${JSON.stringify([...producer.errors])}\n`);
}

describe('network faults through a TCP proxy (real Redis)', () => {
  let redis: RawRedis; // direct, for XPENDING and cleanup
  const prefixes: string[] = [];
  // What a test started; afterEach stops it all, even after a failure.
  let proxies: TcpProxy[] = [];
  let producers: Producer[] = [];
  let apps: INestMicroservice[] = [];
  let clients: RedisStreamsClient[] = [];

  async function proxy(): Promise<TcpProxy> {
    const url = new URL(redisUrl());
    const started = await TcpProxy.start(url.hostname, Number(url.port));
    proxies.push(started);
    return started;
  }

  function prefix(name: string): string {
    const p = uniquePrefix(name);
    prefixes.push(p);
    return p;
  }

  /** XPENDING through a direct connection (never through a proxy). */
  async function pending(p: string): Promise<number> {
    return Number((await redis.xpending(testKeys(p).stream(PATTERN), 'svc'))[0]);
  }

  async function consumer(
    p: string,
    url: string,
    { blockMs = BLOCK_MS, watchdogMs = WATCHDOG_MS } = {},
  ): Promise<{ server: RedisStreamsServer; ledger: Ledger }> {
    const config = testConfig(p, {
      connection: { url, blockingWatchdogMs: watchdogMs },
      // batchSize < concurrency: reading goes on while acks wait, so a stall catches a blocking read in flight.
      consumer: { blockMs, claimIdleMs: CLAIM_IDLE_MS, concurrency: CONCURRENCY, batchSize: 16 },
    });
    const started = await startConsumer(config, [JobsController], [Ledger]);
    apps.push(started.app);
    return { server: started.server, ledger: started.app.get(Ledger) };
  }

  /** A connected client (connected first, so the test measures faults, not the lazy first connect). */
  async function producer(p: string, url: string): Promise<Producer> {
    const client = new RedisStreamsClient(testConfig(p, { connection: { url, blockingWatchdogMs: WATCHDOG_MS } }));
    clients.push(client);
    await client.connect();
    const started = new Producer(client, PATTERN);
    producers.push(started);
    return started;
  }

  beforeAll(() => {
    redis = rawRedis();
  });

  afterEach(async () => {
    // Reset every link first: a failed test may leave one stalled or half-open, and close() waits for Redis.
    for (const link of proxies) link.setMode('drop');
    for (const started of producers) await started.stop();
    for (const app of apps) await app.close();
    for (const client of clients) await client.close();
    for (const link of proxies) await link.close();
    [proxies, producers, apps, clients] = [[], [], [], []];
  });

  afterAll(async () => {
    for (const p of prefixes) await cleanupPrefix(redis, p);
    redis.disconnect();
  });

  /** Waits until every acknowledged emit was handled and nothing is pending; returns the ledger's totals. */
  async function settle(p: string, produced: Producer, ledger: Ledger, server: RedisStreamsServer) {
    await produced.stop();
    await waitFor(() => tally(produced, ledger).lost.length === 0, { timeoutMs: 20_000, message: 'every acknowledged emit to be handled' });
    await waitFor(async () => (await pending(p)) === 0, { timeoutMs: 10_000, message: 'XPENDING 0' });
    await waitFor(async () => (await server.getStatus()).healthy, { timeoutMs: 5_000, message: 'a healthy status' });
    return tally(produced, ledger);
  }

  it('consumer behind a link that resets, stalls and slows: nothing acknowledged is lost, reading resumes within the watchdog bound', async () => {
    const started = Date.now();
    const p = prefix('net-consumer');
    const link = await proxy();
    const { server, ledger } = await consumer(p, link.url);
    // The producer talks to Redis directly: this test is about the consumer's connections (the producer's link is
    // the next test), so every emit here should resolve at once and the ledger isolates the consumer.
    const produced = await producer(p, redisUrl());
    produced.start(4, 15); // ~250 messages/s
    const progress = async (label: string) => {
      const from = produced.next;
      await waitFor(() => ledger.handledFrom(from), { timeoutMs: RESUME_BOUND_MS, message: `progress ${label}` });
    };
    const resumeMs: number[] = [];
    const resumeAfterResetMs: number[] = [];
    await progress('at start');
    for (let round = 0; round < 2; round++) {
      link.setMode('drop'); // connection reset, for an instant
      link.setMode('pass');
      const reset = Date.now();
      await progress('after a reset');
      resumeAfterResetMs.push(Date.now() - reset);

      const acceptedBefore = link.accepted;
      link.setMode('stall'); // black hole: no byte moves, the XREADGROUP in flight gets no answer
      await hold(3_000);
      // The watchdog gave up on the stalled blocking read and reconnected (into the stall) at least once.
      expect(link.accepted).toBeGreaterThan(acceptedBefore);
      link.setMode('pass');
      const healed = Date.now();
      await progress('after the stall');
      resumeMs.push(Date.now() - healed);

      link.setMode('slow'); // 50-200 ms per chunk
      await hold(2_000);
      link.setMode('pass');
      await progress('after the slow link');
    }
    const { lost, duplicates } = await settle(p, produced, ledger, server);
    report('consumer link', produced, { lost: lost.length, duplicates, resumeAfterStallMs: resumeMs, resumeAfterResetMs, reclaimed: server.getMetrics().reclaimed, proxyConnections: link.accepted, ms: Date.now() - started });
    expect(produced.acked.size).toBeGreaterThan(2_000);
    expect(lost).toEqual([]);
    expect(produced.indeterminate).toBe(0);
    // A handler that finished as the link was reset has its XACK refused (the command connection has no offline
    // queue), so its entry is redelivered after claimIdleMs: at most what was in flight, per reset (2). A stall or a
    // slow link only delays acks.
    expect(duplicates).toBeLessThanOrEqual(CONCURRENCY * 2);
    for (const ms of [...resumeMs, ...resumeAfterResetMs]) expect(ms).toBeLessThan(RESUME_BOUND_MS);
    expect(await pending(p)).toBe(0);
    expect((await server.getStatus()).healthy).toBe(true);
  }, 60_000);

  it('producer behind a link that stalls with emits in flight, then resets: every emit settles within the bound, every resolved one is delivered', async () => {
    const started = Date.now();
    const p = prefix('net-producer');
    const link = await proxy();
    // The consumer talks to Redis directly: only the producer's link fails here.
    const { server, ledger } = await consumer(p, redisUrl());
    const produced = await producer(p, link.url);
    const workers = 8;
    produced.start(workers, 5);
    const stuck: number[] = [];
    const flowing = async (label: string) => {
      const before = produced.acked.size;
      await waitFor(() => produced.acked.size >= before + 800, { message: `emits through the link ${label}` });
    };
    for (let round = 0; round < 2; round++) {
      await flowing(round === 0 ? 'at start' : 'after a reset');
      link.setMode('stall');
      // No command timeout: emits written into a stalled link wait; they neither resolve nor fail while it lasts.
      await hold(STALL_MS);
      stuck.push(produced.inFlight);
      link.setMode('drop'); // the reset makes ioredis re-send (or fail) the emits in flight
      link.setMode('pass');
    }
    await flowing('after the last reset');
    const { lost, duplicates } = await settle(p, produced, ledger, server);
    report('producer link', produced, { lost: lost.length, duplicates, inFlightAtReset: stuck, proxyConnections: link.accepted, ms: Date.now() - started });
    expect(produced.acked.size).toBeGreaterThan(2_000);
    expect(stuck).toEqual([workers, workers]); // every worker's emit was waiting in the stall
    expect(produced.longestSettleMs).toBeLessThan(EMIT_SETTLE_BOUND_MS);
    expect(lost).toEqual([]);
    // A re-sent XADD whose first copy Redis had stored is a duplicate (F4): at most the emits in flight per reset.
    expect(duplicates).toBeLessThanOrEqual(workers * 2 + produced.indeterminate);
    expect(await pending(p)).toBe(0);
  }, 60_000);

  /*
   * After a reset the XREADGROUP in flight is dropped by ioredis without settling (the blocking connection does not
   * re-send unfulfilled commands); the loop fails it on the connection's 'close' and reads again at once, rather
   * than after the watchdog (blockMs + blockingWatchdogMs, 12 s with the defaults).
   */
  it('after a connection reset the consumer reads again right after the reconnect, not after the watchdog', async () => {
    const p = prefix('net-reset');
    const link = await proxy();
    const { ledger } = await consumer(p, link.url, { blockMs: 2_000, watchdogMs: 5_000 });
    const produced = await producer(p, redisUrl());
    produced.start(1, 20);
    const before = produced.next;
    await waitFor(() => ledger.handledFrom(before), { message: 'progress at start' });
    link.setMode('drop');
    link.setMode('pass');
    const from = produced.next;
    await waitFor(() => ledger.handledFrom(from), { timeoutMs: 2_000, message: 'progress after the reset' });
  }, 30_000);

  /*
   * A half-open command connection (F3): acks, claims, XINFO and emits on it would wait for a reply for good; the
   * command connection's socket timeout (connection.blockingWatchdogMs) drops it and the work goes on.
   */
  it('after a half-open link (F3: a stall after which only new connections work) the consumer resumes within the watchdog bound', async () => {
    const p = prefix('net-half-open');
    const link = await proxy();
    const { ledger } = await consumer(p, link.url);
    const produced = await producer(p, redisUrl());
    produced.start(4, 15);
    const from = produced.next;
    await waitFor(() => ledger.handledFrom(from), { message: 'progress at start' });
    link.setMode('stall');
    await hold(3_000);
    link.halfOpen(); // every connection open now stays dead; new connections pass
    link.setMode('pass');
    const healed = produced.next;
    await waitFor(() => ledger.handledFrom(healed), { timeoutMs: RESUME_BOUND_MS, message: 'progress after the half-open link' });
  }, 30_000);

  it('an emit on a half-open connection settles within the bound', async () => {
    const p = prefix('net-half-open-emit');
    const link = await proxy();
    const produced = await producer(p, link.url);
    link.halfOpen();
    produced.start(1, 0);
    await waitFor(() => produced.acked.size + produced.indeterminate > 0, { timeoutMs: EMIT_SETTLE_BOUND_MS, message: 'the emit to settle' });
  }, 30_000);

  it('the proxy forwards, stalls without losing bytes, slows, resets and leaves half-open sockets', async () => {
    const echo: Server = createServer((socket) => socket.on('error', () => undefined).pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as { port: number }).port;
    const p = await TcpProxy.start('127.0.0.1', echoPort);
    const sockets: Socket[] = [];
    const open = async () => {
      const socket = connect({ host: '127.0.0.1', port: p.port });
      sockets.push(socket);
      let received = '';
      let closed = false;
      socket.on('data', (chunk) => (received += chunk.toString()));
      socket.on('error', () => undefined);
      socket.on('close', () => (closed = true));
      await new Promise((resolve) => socket.once('connect', resolve));
      return { socket, received: () => received, closed: () => closed };
    };
    try {
      const a = await open();
      a.socket.write('one');
      await waitFor(() => a.received() === 'one', { message: 'pass' });

      p.setMode('stall');
      a.socket.write('two');
      const b = await open(); // a new connection stalls too
      b.socket.write('new');
      await expectNothingWithin(300, () => [a.received(), b.received()], { message: 'no byte to pass the stall' });
      expect([a.received(), b.received()]).toEqual(['one', '']);
      p.setMode('pass');
      await waitFor(() => a.received() === 'onetwo' && b.received() === 'new', { message: 'bytes held during the stall' });

      p.setMode('slow');
      const sent = Date.now();
      a.socket.write('three');
      await waitFor(() => a.received() === 'onetwothree', { message: 'slow' });
      expect(Date.now() - sent).toBeGreaterThanOrEqual(90); // two hops of 50-200 ms (the echo comes back through)

      p.setMode('drop');
      await waitFor(() => a.closed() && b.closed(), { message: 'reset' });
      const c = await open(); // accepted and forwarded after the drop
      c.socket.write('four');
      await waitFor(() => c.received() === 'four', { message: 'forwarding after a drop' });

      p.halfOpen();
      p.setMode('pass');
      c.socket.write('five');
      const d = await open();
      d.socket.write('six');
      await waitFor(() => d.received() === 'six', { message: 'new connections after halfOpen' });
      expect([c.received(), c.closed()]).toEqual(['four', false]); // open, silent, for good
    } finally {
      for (const socket of sockets) socket.destroy();
      await p.close();
      await new Promise((resolve) => echo.close(resolve));
    }
  });
});
