import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ParentMessage, WorkerMessage } from './protocol.js';

type Waiter = { match: (m: WorkerMessage) => boolean; resolve: (m: WorkerMessage) => void; reject: (e: Error) => void };

/** Every worker process alive, so an aborted run can kill them (each by its own pid, via ChildProcess.kill). */
const alive = new Set<WorkerProcess>();

export function killAllWorkers(): void {
  for (const worker of alive) worker.kill();
}

/** A forked worker (compiled dist/bench/workers/*.js) and a typed view of its IPC messages. */
export class WorkerProcess {
  private readonly child: ChildProcess;
  private readonly waiters: Waiter[] = [];
  /** Messages nobody waited for yet (a worker may answer before the orchestrator asks). */
  private readonly inbox: WorkerMessage[] = [];
  private readonly exited: Promise<number | null>;
  /** The latest `progress` count the worker reported. */
  lastUnique = 0;
  lastProgressAt = Date.now();
  private exitError?: Error;
  private failure?: Error;

  constructor(
    readonly label: string,
    script: string,
    params: object,
    execArgv: string[] = [],
  ) {
    const path = fileURLToPath(new URL(`./workers/${script}.js`, import.meta.url));
    this.child = fork(path, [JSON.stringify(params)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    alive.add(this);
    this.child.on('message', (message: WorkerMessage) => this.onMessage(message));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        alive.delete(this);
        this.exitError = new Error(`${label} exited (code ${code}, signal ${signal}) before answering`);
        for (const waiter of this.waiters.splice(0)) waiter.reject(this.exitError);
        resolve(code);
      });
    });
  }

  private onMessage(message: WorkerMessage): void {
    if (message.type === 'progress') {
      if (message.unique !== this.lastUnique) this.lastProgressAt = Date.now();
      this.lastUnique = message.unique;
    }
    if (message.type === 'error') {
      const error = new Error(`${this.label} failed: ${message.message}`);
      this.failure = error;
      for (const waiter of this.waiters.splice(0)) waiter.reject(error);
      return;
    }
    if (message.type === 'progress') return;
    for (let i = 0; i < this.waiters.length; i++) {
      if (this.waiters[i].match(message)) {
        const [waiter] = this.waiters.splice(i, 1);
        waiter.resolve(message);
        return;
      }
    }
    this.inbox.push(message);
  }

  /** True when a message of `type` arrived and nobody has taken it yet. */
  has(type: WorkerMessage['type']): boolean {
    return this.inbox.some((m) => m.type === type);
  }

  /** Resolves with the next message of `type`; rejects after `timeoutMs` or when the worker exits or fails. */
  waitFor<T extends WorkerMessage['type']>(type: T, timeoutMs: number): Promise<Extract<WorkerMessage, { type: T }>> {
    const queued = this.inbox.findIndex((m) => m.type === type);
    if (queued >= 0) return Promise.resolve(this.inbox.splice(queued, 1)[0] as Extract<WorkerMessage, { type: T }>);
    if (this.failure ?? this.exitError) return Promise.reject(this.failure ?? this.exitError);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match: (m) => m.type === type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<WorkerMessage, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.label}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  post(message: ParentMessage): void {
    if (this.child.connected) this.child.send(message);
  }

  /** Waits for the process to exit; kills it if it has not after `timeoutMs`. */
  async finish(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.kill();
      await this.exited;
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
