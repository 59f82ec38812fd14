import { BadRequestException, Body, Get, Inject, Injectable, NotFoundException, Optional, Param, Post, Req } from '@nestjs/common';
import { ReplayManager } from '../replay/replay.manager.js';
import type { ReplayRequest, ReplayTarget } from '../replay/replay-request.js';
import { ConsoleInspector } from './console-inspector.js';
import { patternParam, positiveParam, timeParam } from './console-input.js';
import { ConsoleReplays } from './console-replays.js';
import { ConsoleWrite, SecureHeaders } from './console-headers.js';
import { auditContextOf } from './console-audit.js';
import { REDIS_STREAMS_CONSOLE_OPTIONS, type ConsoleRequest, type ResolvedConsoleOptions } from './console.options.js';

/** Most messages one console replay may name (replay.maxReplayMessages caps it further). */
const MAX_CONSOLE_REPLAY = 1_000_000;

/**
 * The console's replay routes: start a replay (a write) and follow its progress (reads). Replays go to this app's
 * handlers (the server must be listening here) or are copied into another pattern's stream, or are counted only
 * (`dryRun`), all through `ReplayManager`.
 */
@Injectable()
export class ConsoleReplayController {
  constructor(
    @Inject(REDIS_STREAMS_CONSOLE_OPTIONS) private readonly options: ResolvedConsoleOptions,
    private readonly inspector: ConsoleInspector,
    private readonly replays: ConsoleReplays,
    @Optional() private readonly manager?: ReplayManager,
  ) {}

  /**
   * Starts a replay. Body: `{ pattern, startTime?, endTime? (ms or ISO), maxMessages?, dryRun?, targetStream? }`
   * (without `targetStream`: to this app's handlers). Answers 201 with the job; follow it at `api/replay/:id`.
   */
  @Post('api/replay')
  @ConsoleWrite()
  @SecureHeaders()
  async start(@Body() body: unknown, @Req() http: ConsoleRequest) {
    if (!this.manager) throw new NotFoundException('No ReplayManager in this application (import RedisStreamsEnterpriseModule)');
    const input = (body ?? {}) as Record<string, unknown>;
    const pattern = patternParam(input.pattern);
    const startTime = timeParam(input.startTime, 'startTime');
    const endTime = timeParam(input.endTime, 'endTime');
    const maxMessages = positiveParam(input.maxMessages, 'maxMessages', MAX_CONSOLE_REPLAY);
    if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean') throw new BadRequestException('dryRun must be a boolean');
    const targetStream = input.targetStream === undefined || input.targetStream === '' ? undefined : patternParam(input.targetStream, 'targetStream');
    const target: ReplayTarget = targetStream ? { stream: targetStream } : 'handlers';
    if (!this.manager.config.replay.enabled) throw new BadRequestException('Replay is disabled in this application (replay.enabled: false)');
    const request: ReplayRequest = { streamName: pattern, startTime, endTime, maxMessages, dryRun: input.dryRun === true, target };
    const length = await this.inspector.topicLength(pattern);
    const total = Math.min(length, maxMessages ?? length, this.manager.config.replay.maxReplayMessages);
    return this.replays.start(this.manager, request, total, targetStream ? `stream ${targetStream}` : 'handlers', auditContextOf(this.options, http));
  }

  /** The replays started here (newest first, at most MAX_REPLAY_JOBS). */
  @Get('api/replay')
  @SecureHeaders()
  list() {
    return { items: this.replays.list() };
  }

  /** One replay's progress and result. */
  @Get('api/replay/:id')
  @SecureHeaders()
  get(@Param('id') id: string) {
    const job = this.replays.get(id);
    if (!job) throw new NotFoundException('No such replay (finished replays are forgotten after a while, and on restart)');
    return job;
  }
}
