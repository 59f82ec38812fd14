import { Body, Delete, Get, HttpCode, Inject, Injectable, NotFoundException, Optional, Param, Post, Query, Req } from '@nestjs/common';
import { DeadLetterManager } from '../dead-letter/dead-letter.manager.js';
import type { DeadLetter } from '../dead-letter/dead-letter.js';
import { compareIds } from '../replay/replay-range.js';
import { clip, CONSOLE_LIMITS, entryIdParam, entryIdsParam, limitParam, patternParam } from './console-input.js';
import { ConsoleWrite, SecureHeaders } from './console-headers.js';
import { auditContextOf } from './console-audit.js';
import { REDIS_STREAMS_CONSOLE_OPTIONS, type ConsoleRequest, type ResolvedConsoleOptions } from './console.options.js';

/** Dead-letter patterns listed, at most. */
const MAX_PATTERNS = 200;

/** Time part (ms) of an entry id. */
const msOf = (id: string) => Number(id.slice(0, id.indexOf('-')));

/** A dead letter in a list: what identifies it and why it failed, texts cut to maxTextChars. */
function summary(letter: DeadLetter) {
  return {
    dlqId: letter.dlqId,
    pattern: clip(letter.pattern),
    reason: clip(letter.reason),
    group: clip(letter.group),
    consumer: clip(letter.consumer),
    originalId: clip(letter.originalId),
    messageId: letter.messageId === null ? null : clip(letter.messageId),
    errorName: clip(letter.errorName),
    errorMessage: clip(letter.errorMessage),
    deliveries: letter.deliveries,
    lastFailedAt: letter.lastFailedAt?.toISOString() ?? null,
    payload: clip(letter.rawData, 200),
  };
}

/**
 * The console's dead-letter routes: patterns with counts, a page of letters, one letter in full (reads); redrive and
 * delete (writes, see ConsoleRequestGuard). All through `DeadLetterManager`.
 */
@Injectable()
export class ConsoleDeadLettersController {
  constructor(
    @Inject(REDIS_STREAMS_CONSOLE_OPTIONS) private readonly options: ResolvedConsoleOptions,
    @Optional() private readonly deadLetters?: DeadLetterManager,
  ) {}

  /** Without `pattern`: the patterns that have dead letters, with counts. With it: a page of its letters, oldest first, after `after`. */
  @Get('api/dead-letters')
  @SecureHeaders()
  async list(@Query('pattern') pattern?: string, @Query('after') after?: string, @Query('limit') limit?: string) {
    const manager = this.manager();
    if (pattern === undefined || pattern === '') {
      const patterns = (await manager.patterns()).slice(0, MAX_PATTERNS);
      return { patterns: await Promise.all(patterns.map(async (p) => ({ pattern: clip(p, 1_024), count: await manager.count(p) }))) };
    }
    const name = patternParam(pattern);
    const size = limitParam(limit);
    const cursor = after === undefined || after === '' ? undefined : entryIdParam(after, 'after');
    // One more than the page, to tell whether there is a next one; paging by id (partitions are merged by id).
    const letters = await manager.list(name, {
      limit: size + 1,
      ...(cursor ? { from: msOf(cursor), where: (l: DeadLetter) => compareIds(l.dlqId, cursor) > 0 } : {}),
    });
    const items = letters.slice(0, size).map(summary);
    return { pattern: name, count: await manager.count(name), items, next: letters.length > size ? items[items.length - 1].dlqId : null };
  }

  /** One dead letter with every field (each cut at maxFieldChars, at most maxFields). */
  @Get('api/dead-letters/:id')
  @SecureHeaders()
  async inspect(@Param('id') id: string, @Query('pattern') pattern?: string) {
    const letter = await this.manager().get(patternParam(pattern), entryIdParam(id));
    if (!letter) throw new NotFoundException(`No dead letter ${id} of that pattern`);
    const fields = Object.entries(letter.fields).slice(0, CONSOLE_LIMITS.maxFields).map(([name, value]) => ({ name: clip(name, 200), value: clip(value, CONSOLE_LIMITS.maxFieldChars) }));
    return { ...summary(letter), dlqStream: letter.dlqStream, stream: letter.stream, firstFailedAt: letter.firstFailedAt?.toISOString() ?? null, fields };
  }

  /** Moves the named dead letters back to their stream (to the group that gave up on them). Body: `{ pattern, ids }`. */
  @Post('api/dead-letters/redrive')
  @HttpCode(200)
  @ConsoleWrite()
  @SecureHeaders()
  async redrive(@Body() body: unknown, @Req() request: ConsoleRequest) {
    const { pattern, ids } = (body ?? {}) as { pattern?: unknown; ids?: unknown };
    const name = patternParam(pattern);
    const wanted = new Set(entryIdsParam(ids));
    const sorted = [...wanted].sort(compareIds);
    const filter = {
      // The time range narrows the scan to the letters named; `where` picks exactly them.
      from: msOf(sorted[0]),
      to: msOf(sorted[sorted.length - 1]),
      where: (l: DeadLetter) => wanted.has(l.dlqId),
      limit: wanted.size,
    };
    const result = await this.manager().redrive(name, filter, auditContextOf(this.options, request));
    return { redriven: result.redriven, skipped: result.skipped, notFound: [...wanted].filter((id) => !result.redriven.some((r) => r.dlqId === id) && !result.skipped.includes(id)) };
  }

  /** Deletes the named dead letters. Query: `pattern`, `ids` (comma-separated). */
  @Delete('api/dead-letters')
  @ConsoleWrite()
  @SecureHeaders()
  async remove(@Req() request: ConsoleRequest, @Query('pattern') pattern?: string, @Query('ids') ids?: string) {
    return { deleted: await this.manager().delete(patternParam(pattern), entryIdsParam(ids), auditContextOf(this.options, request)) };
  }

  private manager(): DeadLetterManager {
    if (!this.deadLetters) throw new NotFoundException('No DeadLetterManager in this application (import RedisStreamsEnterpriseModule)');
    return this.deadLetters;
  }
}
