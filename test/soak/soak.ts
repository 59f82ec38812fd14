// The soak: a seeded, randomized run of every fault at once against a workload of child processes, then one checker.
// Usage: npm run test:soak -- --seed <n> --duration <time> [--topology single|replicated|cluster] [--features …]
// (see options.ts and the README's "Soak" section). Exit code 0: every check passed; 1: a violation (the table says
// which, and how to replay the seed); 2: the harness itself failed.
import { fork, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeadLetterManager, PartitioningManager, ReplayManager } from 'nestjs-redis-streams-enterprise';
import { check, formatTable, type Row } from './checker.js';
import { readLedgers } from './ledger.js';
import { describeFault, schedule, type Fault } from './nemesis.js';
import { parseOptions, type SoakOptions } from './options.js';
import { SoakTopology, type RedisFault } from './topology.js';
import { configFor, GROUP, TOPIC, type ConsumerKind, type SoakConnection } from './workload.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A deadline for Promise.race: unref'd, so a race already won does not keep the finished process alive. */
const deadline = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
const PREFIX = 'soak';

class Log {
  readonly started = Date.now();
  constructor(private readonly file: string) {}
  line(text: string): void {
    const t = `+${((Date.now() - this.started) / 1000).toFixed(1)}s`.padStart(8);
    const line = `${t} ${text}`;
    console.log(line);
    appendFileSync(this.file, `${line}\n`);
  }
}

/** One logical workload process (consumer or producer), restarted as new incarnations. */
class Proc {
  child?: ChildProcess;
  incarnation = -1;
  /** A fault is acting on it (the nemesis skips it meanwhile). */
  busy = false;
  paused = false;
  /** Set before the harness kills or stops it on purpose. */
  expectExit = false;
  peakHeap = 0;
  exited?: Promise<{ code: number | null; signal: string | null }>;

  constructor(
    readonly name: string,
    readonly role: 'consumer' | 'producer',
    readonly kind: ConsumerKind | 'producer',
    private readonly h: Harness,
  ) {}

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Forks a new incarnation and waits until it listens; retries (recording the crash) if it dies on the way. */
  async start(): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      if (await this.startOnce()) return;
      await sleep(1_000);
    }
    throw new Error(`${this.name} could not be started 20 times in a row`);
  }

  private async startOnce(): Promise<boolean> {
    this.incarnation++;
    this.expectExit = false;
    const script = this.role === 'consumer' ? this.h.consumerScript : this.h.producerScript;
    // Each process's output goes to its own file in the run directory (logs/<name>.log, every incarnation appended).
    const out = openSync(join(this.h.opts.out, 'logs', `${this.name}.log`), 'a');
    const child = fork(script, [], { env: this.h.childEnv(this), stdio: ['ignore', out, out, 'ipc'] });
    closeSync(out);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.on('message', (m: { stats?: { heapUsed: number } }) => {
      if (m.stats && m.stats.heapUsed > this.peakHeap) this.peakHeap = m.stats.heapUsed;
    });
    let isListening = false;
    void this.exited.then(({ code, signal }) => {
      if (this.expectExit || this.h.finished) return;
      if (!isListening) {
        // listen() refused to start (Redis unreachable at start: ConnectionFailedError): retried below, reported apart.
        this.h.startFailures.push(`${this.name}#${this.incarnation} code ${code} at ${this.h.elapsed()}`);
        return;
      }
      this.h.unexpectedExits.push(`${this.name}#${this.incarnation} pid ${child.pid} exited by itself (code ${code}, signal ${signal}) at ${this.h.elapsed()}`);
      this.h.log.line(`!! ${this.name} (pid ${child.pid}) exited by itself: code ${code} signal ${signal}; restarting`);
      if (!this.busy) {
        this.busy = true;
        void sleep(1_000)
          .then(() => this.start())
          .finally(() => (this.busy = false));
      }
    });
    const listening = await Promise.race([
      new Promise<boolean>((resolve) => child.on('message', (m: { listening?: string }) => m.listening && resolve(true))),
      this.exited.then(() => false),
      deadline(60_000).then(() => false),
    ]);
    if (!listening && this.running) {
      this.expectExit = true;
      child.kill('SIGKILL');
      this.h.unexpectedExits.push(`${this.name}#${this.incarnation} did not listen within 60 s`);
    }
    if (listening) {
      isListening = true;
      this.h.restarts++;
    }
    return listening;
  }

  async kill(signal: 'SIGKILL' | 'SIGTERM', timeoutMs = 20_000): Promise<{ code: number | null; signal: string | null } | undefined> {
    if (!this.running) return undefined;
    this.expectExit = true;
    if (this.paused) this.child?.kill('SIGCONT');
    this.paused = false;
    this.child?.kill(signal);
    const exit = await Promise.race([this.exited, deadline(timeoutMs).then(() => undefined)]);
    if (!exit) {
      this.child?.kill('SIGKILL');
      await this.exited;
    }
    return exit;
  }
}

class Harness {
  readonly log: Log;
  readonly procs: Proc[] = [];
  readonly unexpectedExits: string[] = [];
  readonly badShutdowns: string[] = [];
  readonly startFailures: string[] = [];
  restarts = 0;
  finished = false;
  faultsRun = 0;
  faultErrors = 0;
  readonly consumerScript = fileURLToPath(new URL('./consumer.js', import.meta.url));
  readonly producerScript = fileURLToPath(new URL('./producer.js', import.meta.url));
  private proxyLock: Promise<unknown> = Promise.resolve();
  private admin?: { partitions: PartitioningManager; deadLetters: DeadLetterManager; replays: ReplayManager };

  constructor(
    readonly opts: SoakOptions,
    readonly topology: SoakTopology,
  ) {
    this.log = new Log(join(opts.out, 'soak.log'));
  }

  elapsed(): string {
    return `+${((Date.now() - this.log.started) / 1000).toFixed(1)}s`;
  }

  get connection(): SoakConnection {
    return this.topology.clientConnection;
  }

  childEnv(p: Proc): NodeJS.ProcessEnv {
    const o = this.opts;
    return {
      ...process.env,
      SOAK_NAME: p.name,
      SOAK_KIND: p.kind,
      SOAK_INC: String(p.incarnation),
      SOAK_PREFIX: PREFIX,
      SOAK_CONNECTION: JSON.stringify(this.connection),
      SOAK_TOPOLOGY: o.topology,
      SOAK_LEDGER_DIR: join(o.out, 'ledger'),
      SOAK_SEED: String(o.seed),
      SOAK_FEATURES: [...o.features].join(','),
      SOAK_RATE: String(o.rate),
      SOAK_POISON_RATE: String(o.poisonRate),
      SOAK_HANDLER_MS: String(o.handlerMs),
    };
  }

  plan(): void {
    const f = this.opts.features;
    const kinds: ConsumerKind[] = [];
    if (f.has('plain') || f.has('requests')) kinds.push('plain');
    if (f.has('keyed')) kinds.push('keyed');
    if (f.has('global')) kinds.push('global');
    for (const kind of kinds) for (let i = 0; i < this.opts.consumersPerKind; i++) this.procs.push(new Proc(`c-${kind}-${i}`, 'consumer', kind, this));
    for (let i = 0; i < this.opts.producers; i++) this.procs.push(new Proc(`p${i}`, 'producer', 'producer', this));
  }

  private adminManagers() {
    this.admin ??= {
      partitions: new PartitioningManager(configFor('keyed', PREFIX, this.connection, this.opts.topology)),
      deadLetters: new DeadLetterManager(configFor('plain', PREFIX, this.connection, this.opts.topology)),
      replays: new ReplayManager(configFor('plain', PREFIX, this.connection, this.opts.topology)),
    };
    return this.admin;
  }

  async closeAdmin(): Promise<void> {
    if (!this.admin) return;
    await this.admin.deadLetters.close();
    await this.admin.replays.close();
    await (this.admin.partitions as unknown as { onApplicationShutdown(): Promise<void> }).onApplicationShutdown();
  }

  private withProxy(fn: () => Promise<void>): Promise<void> {
    const run = this.proxyLock.then(fn);
    this.proxyLock = run.catch(() => undefined);
    return run;
  }

  /** Runs one fault to its end; logs what happened. Never throws (an error is logged and counted). */
  async run(fault: Fault): Promise<void> {
    const label = describeFault(fault).trim();
    try {
      const result = await this.apply(fault);
      this.faultsRun++;
      this.log.line(`${label} -> ${result}`);
    } catch (error) {
      this.faultErrors++;
      this.log.line(`${label} -> error: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    }
  }

  private async apply(fault: Fault): Promise<string> {
    switch (fault.kind) {
      case 'kill':
      case 'term':
      case 'stop': {
        const p = this.procs.find((x) => x.name === fault.target);
        if (!p || p.busy || !p.running) return 'skipped (target busy or down)';
        p.busy = true;
        try {
          const pid = p.child?.pid;
          if (fault.kind === 'stop') {
            p.paused = true;
            p.child?.kill('SIGSTOP');
            await sleep(fault.ms);
            if (p.paused) p.child?.kill('SIGCONT');
            p.paused = false;
            return `pid ${pid} continued`;
          }
          const exit = await p.kill(fault.kind === 'kill' ? 'SIGKILL' : 'SIGTERM');
          let note = '';
          if (fault.kind === 'term' && exit?.code !== 0) {
            this.badShutdowns.push(`${p.name} pid ${pid}: SIGTERM at ${this.elapsed()} -> ${exit ? `code ${exit.code} signal ${exit.signal}` : 'no exit in 20 s'}`);
            note = ` (UNCLEAN: ${exit ? `code ${exit.code}` : 'hung'})`;
          }
          await sleep(fault.ms);
          await p.start();
          return `pid ${pid} ${fault.kind === 'kill' ? 'killed' : `exited ${exit?.code}`}${note}; restarted as pid ${p.child?.pid}`;
        } finally {
          p.busy = false;
        }
      }
      case 'proxy-drop':
        await this.withProxy(async () => {
          this.topology.setProxy('drop');
          this.topology.setProxy('pass');
        });
        return `reset (${this.topology.proxy?.openConnections} open after)`;
      case 'proxy-halfopen':
        await this.withProxy(async () => this.topology.setProxy('halfopen'));
        return 'done';
      case 'proxy-stall':
      case 'proxy-slow':
        await this.withProxy(async () => {
          if (this.topology.proxy) this.topology.proxy.slowMs = [20, 150];
          this.topology.setProxy(fault.kind === 'proxy-stall' ? 'stall' : 'slow');
          await sleep(fault.ms);
          this.topology.setProxy('pass');
        });
        return 'healed';
      case 'scale': {
        const layout = await this.adminManagers().partitions.scalePartitions(TOPIC.keyed, fault.arg ?? 1, [GROUP]);
        return `layout epoch ${layout.epoch}, counts ${JSON.stringify(layout.counts)}`;
      }
      case 'redrive': {
        const r = await this.adminManagers().deadLetters.redrive(TOPIC.plain);
        return `${r.redriven.length} redriven, ${r.skipped.length} skipped`;
      }
      case 'replay': {
        const r = await this.adminManagers().replays.replayMessages({
          streamName: TOPIC.plain,
          startTime: Date.now() - fault.ms,
          target: { stream: TOPIC.replayed },
        });
        return `${r.replayed} copied, ${r.skipped} skipped, ${r.failed} failed, stopped by ${r.stoppedBy}`;
      }
      default:
        return this.topology.runRedisFault(fault.kind as RedisFault, fault.ms, fault.arg ?? 0);
    }
  }
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  mkdirSync(join(opts.out, 'ledger'), { recursive: true });
  mkdirSync(join(opts.out, 'logs'), { recursive: true });
  // The harness's own library instances (admin managers, checker) log errors only; the nemesis log says the rest.
  Logger.overrideLogger(['error']);
  const replay = `npm run test:soak -- --seed ${opts.seed} --duration ${opts.durationMs / 1000}s --topology ${opts.topology} --features ${[...opts.features].join(',')}`;
  const topology = await SoakTopology.start(opts.topology);
  const h = new Harness(opts, topology);
  let verdict = 2;
  // Interrupted (Ctrl-C, a CI timeout): leave no process and no redis-server behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      h.finished = true;
      for (const p of h.procs) if (p.running) p.child?.kill('SIGKILL');
      void topology.stop().finally(() => process.exit(2));
    });
  }
  try {
    h.plan();
    const faults = schedule({
      seed: opts.seed,
      durationMs: opts.durationMs,
      topology: opts.topology,
      features: opts.features,
      processes: h.procs.map((p) => p.name),
      redisFaults: topology.redisFaults,
      meanGapMs: opts.meanGapMs,
    });
    h.log.line(`soak seed=${opts.seed} topology=${opts.topology} duration=${opts.durationMs / 1000}s features=${[...opts.features].join(',')} out=${opts.out}`);
    h.log.line(`Redis: AOF appendfsync always; processes: ${h.procs.map((p) => p.name).join(' ')}`);
    h.log.line(`schedule (${faults.length} faults):\n${faults.map(describeFault).join('\n')}`);
    writeFileSync(join(opts.out, 'schedule.txt'), `${faults.map(describeFault).join('\n')}\n`);

    await Promise.all(h.procs.filter((p) => p.role === 'consumer').map((p) => p.start()));
    await Promise.all(h.procs.filter((p) => p.role === 'producer').map((p) => p.start()));
    const t0 = Date.now();
    h.log.line('workload running; nemesis on');

    const active = new Set<Promise<void>>();
    for (const fault of faults) {
      const wait = t0 + fault.at - Date.now();
      if (wait > 0) await sleep(wait);
      const p = h.run(fault).finally(() => active.delete(p));
      active.add(p);
    }
    const rest = t0 + opts.durationMs - Date.now();
    if (rest > 0) await sleep(rest);

    h.log.line(`healing: waiting for ${active.size} faults in progress`);
    await Promise.race([Promise.all(active), deadline(120_000)]);
    await topology.heal();
    for (const p of h.procs) {
      if (p.paused) p.child?.kill('SIGCONT');
      p.paused = false;
      if (!p.running && !p.busy) await p.start();
    }
    h.log.line('healed; stopping producers');
    await Promise.all(
      h.procs
        .filter((p) => p.role === 'producer')
        .map(async (p) => {
          p.expectExit = true;
          p.child?.send('stop');
          const exit = await Promise.race([p.exited, deadline(60_000).then(() => undefined)]);
          if (exit?.code !== 0) h.badShutdowns.push(`${p.name}: stop -> ${exit ? `code ${exit.code}` : 'no exit in 60 s'}`);
          if (!exit) await p.kill('SIGKILL');
        }),
    );

    // Drain: until everything resolved is delivered, every poison message is dead-lettered and nothing is pending.
    h.log.line('draining');
    const drainChecks = ['lost (resolved emit never delivered)', 'poison messages not dead-lettered', 'entries left pending / retries queued', 'entries never read (group lag)'];
    const drainUntil = Date.now() + opts.drainTimeoutMs;
    let quiet = 0;
    for (;;) {
      const checkStarted = Date.now();
      const rows = await runCheck(h, topology);
      const checkMs = Date.now() - checkStarted;
      const open = rows.filter((r) => drainChecks.includes(r.check) && r.ok === false);
      quiet = open.length === 0 ? quiet + 1 : 0;
      if (quiet >= 3 || Date.now() > drainUntil) {
        h.log.line(quiet >= 3 ? 'drained' : `drain timeout: ${open.map((r) => `${r.check}=${r.value}`).join(', ')}`);
        break;
      }
      await sleep(Math.max(2_000, 2 * checkMs)); // long runs have big ledgers: poll no more than half the time
    }
    h.log.line('stopping consumers (SIGTERM)');
    await Promise.all(
      h.procs
        .filter((p) => p.role === 'consumer')
        .map(async (p) => {
          const pid = p.child?.pid;
          const exit = await p.kill('SIGTERM');
          if (exit && exit.code !== 0) h.badShutdowns.push(`${p.name} pid ${pid}: final SIGTERM -> code ${exit.code} signal ${exit.signal}`);
          if (!exit && p.running) h.badShutdowns.push(`${p.name} pid ${pid}: final SIGTERM -> no exit in 20 s`);
        }),
    );
    h.finished = true;
    const rows = await runCheck(h, topology);
    const violations = rows.filter((r) => r.ok === false);
    const table = formatTable(rows);
    console.log(`\n${table}\n`);
    const summary = violations.length === 0 ? `SOAK PASSED seed=${opts.seed}` : `SOAK FAILED seed=${opts.seed}: ${violations.map((v) => v.check).join('; ')}\nreplay: ${replay}`;
    console.log(summary);
    writeFileSync(join(opts.out, 'result.json'), JSON.stringify({ seed: opts.seed, topology: opts.topology, durationMs: opts.durationMs, features: [...opts.features], faults: faults.length, rows, passed: violations.length === 0 }, null, 2));
    writeFileSync(join(opts.out, 'table.txt'), `${table}\n${summary}\n`);
    verdict = violations.length === 0 ? 0 : 1;
  } catch (error) {
    console.error(`soak harness failed (seed ${opts.seed}):`, error);
    verdict = 2;
  } finally {
    h.finished = true;
    for (const p of h.procs) if (p.running) await p.kill('SIGKILL');
    // The admin managers' close() is bounded: one that hangs is a library defect of its own, logged, not waited for.
    const adminClosed = await Promise.race([h.closeAdmin().then(() => true, () => true), deadline(10_000).then(() => false)]);
    if (!adminClosed) h.log.line('!! an admin manager (PartitioningManager / DeadLetterManager / ReplayManager) close() did not resolve in 10 s');
    if (!opts.keep) await topology.stop();
    else h.log.line('--keep: Redis left running');
    h.log.line('done');
  }
  return verdict;
}

async function runCheck(h: Harness, topology: SoakTopology): Promise<Row[]> {
  const { records, torn } = readLedgers(join(h.opts.out, 'ledger'));
  const redis = topology.directRedis();
  const scanNodes = await topology.scanNodes();
  const direct: SoakConnection = topology.cluster ? topology.clientConnection : { url: `redis://127.0.0.1:${(scanNodes[0].options.port)}` };
  const peak = h.procs.reduce((best, p) => (p.peakHeap > best.bytes ? { bytes: p.peakHeap, process: p.name } : best), { bytes: 0, process: '-' });
  try {
    return await check({
      prefix: PREFIX,
      records,
      torn,
      redis,
      scanNodes,
      adminConfig: configFor('plain', PREFIX, direct, 'single'),
      processes: { unexpectedExits: h.unexpectedExits, badShutdowns: h.badShutdowns, startFailures: h.startFailures, peakHeap: peak, restarts: h.restarts - h.procs.length },
      maxHeapMb: h.opts.maxHeapMb,
      maxDuplicateRatio: h.opts.maxDuplicateRatio,
      faultsRun: h.faultsRun,
      faultErrors: h.faultErrors,
    });
  } finally {
    redis.disconnect();
    for (const n of scanNodes) n.disconnect();
  }
}

process.exitCode = await main();
// Whatever is still open now (a library timer or socket) must not keep a finished soak alive; say so if it would.
setTimeout(() => {
  console.error(`soak: still alive 5 s after the end (${process.getActiveResourcesInfo().join(', ')}); exiting`);
  process.exit(process.exitCode);
}, 5_000).unref();
