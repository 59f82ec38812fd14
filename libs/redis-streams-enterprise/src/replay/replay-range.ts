import { ReplayRangeError } from '../errors/replay-range.error.js';
import type { ReplayRequest } from './replay-request.js';

const ENTRY_ID = /^\d+(-\d+)?$/;

const ms = (t: number | Date): number => (t instanceof Date ? t.getTime() : t);

/**
 * XRANGE bounds of a request. Entry ids begin with the Redis server's time in ms, so a time range is an id range:
 * `XRANGE key <startMs> <endMs>` covers every entry written from startMs to endMs inclusive.
 * @throws ReplayRangeError for malformed ids, invalid times or an empty range (start after end).
 */
export function replayRange(request: ReplayRequest): { start: string; end: string } {
  for (const [name, id] of [['startId', request.startId], ['endId', request.endId]] as const) {
    if (id !== undefined && !ENTRY_ID.test(id)) throw new ReplayRangeError(`${name} "${id}" is not a stream entry id (<ms>-<seq>)`);
  }
  for (const [name, t] of [['startTime', request.startTime], ['endTime', request.endTime]] as const) {
    if (t !== undefined && !(Number.isFinite(ms(t)) && ms(t) >= 0)) throw new ReplayRangeError(`${name} is not a valid time`);
  }
  const start = request.startId ?? (request.startTime === undefined ? '-' : String(Math.floor(ms(request.startTime))));
  const end = request.endId ?? (request.endTime === undefined ? '+' : String(Math.floor(ms(request.endTime))));
  if (start !== '-' && end !== '+' && compareIds(withSeq(start, 0), withSeq(end, Number.MAX_SAFE_INTEGER)) > 0) {
    throw new ReplayRangeError(`the range starts (${start}) after it ends (${end})`);
  }
  return { start, end };
}

function withSeq(id: string, seq: number): string {
  return id.includes('-') ? id : `${id}-${seq}`;
}

/** Orders two entry ids (`<ms>-<seq>`) numerically. */
export function compareIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  const byMs = Number(am) - Number(bm);
  return byMs !== 0 ? byMs : Number(as) - Number(bs);
}
