import { fork, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeadLetterManager, PartitioningManager, ReplayManager, SchemaManager } from 'nestjs-redis-streams-enterprise';
import { describeFault, type Fault } from './nemesis.js';
import type { SoakOptions } from './options.js';
import type { RedisFault, SoakTopology } from './topology.js';
import { CHECKED_SCHEMA, configFor, GROUP, TOPIC, type ConsumerKind, type SoakConnection } from './workload.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A deadline for Promise.race: unref'd, so a race already won does not keep the finished process alive. */
export const deadline = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
/** Key prefix of the run (the Redis is the run's own). */
export const PREFIX = 'soak';

/** The run log: stdout and soak.log, each line stamped with the time since the start. */
export class Log {
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
export class Proc {
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

/** The workload processes and the nemesis acting on them (the topology does the Redis side). */
export class Harness {
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

  /** Registers the schema of soak.checked (an operator's deploy step) before any process starts. */
  async registerSchemas(): Promise<void> {
    if (!this.opts.features.has('schema')) return;
    const schemas = new SchemaManager(configFor('plain', PREFIX, this.connection, this.opts.topology));
    try {
      await schemas.registerSchema(TOPIC.checked, CHECKED_SCHEMA as unknown as Record<string, unknown>, '1.0.0');
    } finally {
      await (schemas as unknown as { onApplicationShutdown(): Promise<void> }).onApplicationShutdown();
    }
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
