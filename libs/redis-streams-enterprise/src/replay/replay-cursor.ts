import type { Redis } from 'ioredis';
import { parseEntry, type StreamEntry } from '../connection/redis-replies.js';
import { compareIds } from './replay-range.js';

/** An entry together with the stream it came from. */
export interface SourcedEntry extends StreamEntry {
  readonly stream: string;
}

/**
 * Reads a stream range page by page (`XRANGE … COUNT n`), never the whole stream at once. Shared by replay and by
 * the dead-letter manager.
 */
export async function* pageThrough(redis: Redis, stream: string, start: string, end: string, pageSize: number): AsyncGenerator<SourcedEntry> {
  let from = start;
  for (;;) {
    const page = await redis.xrange(stream, from, end, 'COUNT', pageSize);
    for (const raw of page) {
      const entry = parseEntry(raw);
      if (entry) yield { ...entry, stream };
    }
    if (page.length < pageSize) return;
    from = `(${String((page[page.length - 1] as unknown[])[0])}`;
  }
}

/**
 * Merges several ascending entry sequences into one ascending by entry id (time order across streams). Holds one
 * entry per stream at a time.
 */
export async function* mergeById(sources: AsyncGenerator<SourcedEntry>[]): AsyncGenerator<SourcedEntry> {
  const heads = await Promise.all(sources.map((s) => s.next()));
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const head = heads[i];
      if (head.done) continue;
      if (best === -1) best = i;
      else {
        const current = heads[best];
        if (!current.done && compareIds(head.value.id, current.value.id) < 0) best = i;
      }
    }
    if (best === -1) return;
    const chosen = heads[best];
    if (chosen.done) return;
    yield chosen.value;
    heads[best] = await sources[best].next();
  }
}

/** The sources one after another. */
export async function* concatenate(sources: AsyncGenerator<SourcedEntry>[]): AsyncGenerator<SourcedEntry> {
  for (const source of sources) yield* source;
}
