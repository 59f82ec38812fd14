import { ConflictException, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { errorText } from '../observability/log-format.js';
import type { AuditContext } from '../observability/audit-trail.js';
import type { ReplayManager } from '../replay/replay.manager.js';
import type { ReplayProgress, ReplayRequest, ReplayResult } from '../replay/replay-request.js';

/** A replay started from the console, as `GET <path>/api/replay/:id` returns it. */
export interface ConsoleReplayJob {
  readonly id: string;
  readonly pattern: string;
  readonly target: string;
  readonly dryRun: boolean;
  readonly startedAt: string;
  state: 'running' | 'done' | 'failed';
  /** Entries the replay will read at most (the topic's length, capped by maxMessages): the progress bar's 100 %. */
  total: number;
  progress: ReplayProgress;
  /** 0..100; 100 once finished. */
  percent: number;
  result?: Omit<ReplayResult, 'validation'> & { readonly invalid?: number };
  error?: string;
}

/** Replays kept for the console to show, at most (the oldest finished ones are forgotten first). */
export const MAX_REPLAY_JOBS = 20;
/** Replays running at once from the console, at most. */
export const MAX_RUNNING_REPLAYS = 2;

/**
 * Replays started from the console: each runs in the background through `ReplayManager.replayMessages` with an
 * AbortSignal, its progress recorded from `onProgress`. Bounded (MAX_REPLAY_JOBS kept, MAX_RUNNING_REPLAYS at once);
 * shutdown aborts the running ones and waits for them to stop.
 */
@Injectable()
export class ConsoleReplays implements OnApplicationShutdown {
  private readonly logger = new Logger(ConsoleReplays.name);
  private readonly jobs = new Map<string, ConsoleReplayJob>();
  private readonly running = new Map<string, { abort: AbortController; done: Promise<void> }>();

  /**
   * Starts a replay; returns its job at once.
   * @throws ConflictException when MAX_RUNNING_REPLAYS are running.
   */
  start(manager: ReplayManager, request: ReplayRequest, total: number, target: string, by?: AuditContext): ConsoleReplayJob {
    if (this.running.size >= MAX_RUNNING_REPLAYS) throw new ConflictException(`${MAX_RUNNING_REPLAYS} replays are running already; wait for one to finish`);
    const pattern = String(request.streamName);
    const job: ConsoleReplayJob = {
      id: randomUUID(), pattern, target, dryRun: request.dryRun ?? false, startedAt: new Date().toISOString(),
      state: 'running', total: Math.max(0, total), progress: { scanned: 0, replayed: 0, skipped: 0, failed: 0 }, percent: 0,
    };
    this.remember(job);
    const abort = new AbortController();
    const onProgress = (progress: ReplayProgress) => {
      job.progress = progress;
      job.percent = job.total > 0 ? Math.min(99, Math.floor((100 * progress.scanned) / job.total)) : 0;
    };
    const done = manager.replayMessages({ ...request, signal: abort.signal, onProgress }, by).then(
      (result) => {
        const { validation, ...rest } = result;
        job.result = { ...rest, ...(validation ? { invalid: validation.invalid.length } : {}) };
        job.progress = { scanned: result.scanned, replayed: result.replayed, skipped: result.skipped, failed: result.failed, lastId: result.lastId };
        job.state = 'done';
        job.percent = 100;
      },
      (error: unknown) => {
        job.state = 'failed';
        job.error = errorText(error);
        this.logger.warn(`Console replay of ${pattern} failed: ${job.error}`);
      },
    ).finally(() => this.running.delete(job.id));
    this.running.set(job.id, { abort, done });
    return job;
  }

  get(id: string): ConsoleReplayJob | undefined {
    return this.jobs.get(id);
  }

  /** The kept jobs, newest first. */
  list(): ConsoleReplayJob[] {
    return [...this.jobs.values()].reverse();
  }

  /** Aborts the running replays and waits for them to stop (each stops before its next entry). */
  async onApplicationShutdown(): Promise<void> {
    const running = [...this.running.values()];
    for (const { abort } of running) abort.abort();
    await Promise.all(running.map((r) => r.done));
  }

  private remember(job: ConsoleReplayJob): void {
    this.jobs.set(job.id, job);
    for (const [id, old] of this.jobs) {
      if (this.jobs.size <= MAX_REPLAY_JOBS) break;
      if (old.state !== 'running') this.jobs.delete(id);
    }
  }
}
