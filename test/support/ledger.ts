/**
 * The one ledger of the end-to-end tests: what a test expected to be handled against what its handlers recorded.
 * Every delivery test counts with these functions (lost, duplicated, unexpected, per-key order, global order) instead
 * of its own; a test states its bounds on the figures (lost = [], duplicates <= N, ...) itself.
 *
 * A message is named by a key of any type: a number n, a label `key:n`, `n/attempt`. Keys are compared by identity
 * (Map/Set semantics), so use numbers or strings.
 */

/** Messages from..to-1, numbered. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

/**
 * Handlings recorded in memory as they happen: how often each message was handled, and when first. Extend it as a
 * test's injectable (`@Injectable() class Ledger extends HandlingLog {}`) or share one instance between apps.
 */
export class HandlingLog<K = number> {
  /** Message -> times handled. */
  readonly counts = new Map<K, number>();
  /** Message -> Date.now() of its first handling. */
  readonly firstHandledAt = new Map<K, number>();

  record(key: K): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (!this.firstHandledAt.has(key)) this.firstHandledAt.set(key, Date.now());
  }

  has(key: K): boolean {
    return this.counts.has(key);
  }

  /** Handled at least one message for which `test` holds. */
  some(test: (key: K) => boolean): boolean {
    for (const key of this.counts.keys()) if (test(key)) return true;
    return false;
  }
}

/** What `reckon` found. */
export interface Reckoning<K> {
  /** Handlings in all (every repeat counted). */
  readonly handlings: number;
  /** Expected messages handled at least once. */
  readonly distinct: number;
  /** Expected and never handled, in expected order. */
  readonly lost: K[];
  /** Handled more than once (expected or not), in order of first handling. */
  readonly duplicated: K[];
  /** Handlings beyond the first of each message (expected or not). */
  readonly duplicates: number;
  /** Handled but never expected, in order of first handling. */
  readonly unexpected: K[];
}

/**
 * Compares the handlings (one element per handling, or a HandlingLog / message -> count map) with the messages
 * expected to be handled.
 */
export function reckon<K>(handled: Iterable<K> | ReadonlyMap<K, number> | HandlingLog<K>, expected: Iterable<K>): Reckoning<K> {
  const counts = handled instanceof HandlingLog ? handled.counts : handled instanceof Map ? (handled as ReadonlyMap<K, number>) : countsOf(handled as Iterable<K>);
  const wanted = new Set(expected);
  let handlings = 0;
  let distinct = 0;
  let duplicates = 0;
  const duplicated: K[] = [];
  const unexpected: K[] = [];
  for (const [key, times] of counts) {
    handlings += times;
    if (times > 1) {
      duplicated.push(key);
      duplicates += times - 1;
    }
    if (wanted.has(key)) distinct++;
    else unexpected.push(key);
  }
  const lost = [...wanted].filter((key) => !counts.has(key));
  return { handlings, distinct, lost, duplicated, duplicates, unexpected };
}

/** Message -> times it occurs in `handlings` (in order of first occurrence). */
export function countsOf<K>(handlings: Iterable<K>): Map<K, number> {
  const counts = new Map<K, number>();
  for (const key of handlings) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/** A keyed message as emitted or handled: its ordering key and its number within that key. */
export interface Keyed {
  readonly key: string;
  readonly n: number;
}

/** Per key, the numbers in the order they occur. */
export function byKey(messages: Iterable<Keyed>): Map<string, number[]> {
  const grouped = new Map<string, number[]>();
  for (const { key, n } of messages) {
    const list = grouped.get(key);
    if (list) list.push(n);
    else grouped.set(key, [n]);
  }
  return grouped;
}

/** What `checkPerKeyOrder` found: every list is empty when each key's handlings are exactly its emits, in order. */
export interface PerKeyOrder {
  /** Keys handled in another order than emitted (each expected message handled once). */
  readonly outOfOrder: string[];
  /** Keys whose handlings are not each of its emitted messages once (`key:handlings`), and keys never emitted. */
  readonly wrongCount: string[];
  /** Handlings in all. */
  readonly total: number;
}

/**
 * Per key, the handled numbers must be exactly the emitted ones, each once, in the order they were emitted.
 * `expected` are the messages in emit order (per key). With `firstHandlings`, repeats of a message are dropped
 * before the check (at-least-once runs, where a handling cut by a kill may be repeated later). `describe` prints a
 * handling of a key that is out of order (for the failure's log).
 */
export function checkPerKeyOrder<H extends Keyed>(
  handled: readonly H[],
  expected: Iterable<Keyed>,
  { firstHandlings = false, describe }: { firstHandlings?: boolean; describe?: (h: H) => string } = {},
): PerKeyOrder {
  const want = byKey(expected);
  const got = byKey(firstHandlings ? handled.filter(firstOfEach()) : handled);
  const outOfOrder: string[] = [];
  const wrongCount: string[] = [];
  for (const [key, ns] of want) {
    const seen = got.get(key) ?? [];
    const same = (a: number[], b: number[]) => a.length === b.length && a.every((n, i) => n === b[i]);
    if (same(seen, ns)) continue;
    if (same([...seen].sort((a, b) => a - b), [...ns].sort((a, b) => a - b))) outOfOrder.push(key);
    else wrongCount.push(`${key}:${seen.length}`);
  }
  for (const [key, seen] of got) if (!want.has(key)) wrongCount.push(`${key}:${seen.length}`);
  if (describe) {
    for (const key of outOfOrder) {
      process.stdout.write(`[order check] ${key}: ${handled.filter((h) => h.key === key).map(describe).join(' ')}\n`);
    }
  }
  return { outOfOrder, wrongCount, total: handled.length };
}

/** What `checkGlobalOrder` found: every list is empty exactly when the handlings equal the expected sequence. */
export interface GlobalOrder<K> {
  readonly lost: K[];
  readonly duplicated: K[];
  readonly unexpected: K[];
  /** `a before b`: handled in another order than expected (the first 20). */
  readonly outOfOrder: string[];
}

/** One total order: every expected message handled once, in the expected order, nothing else. */
export function checkGlobalOrder<K>(handled: readonly K[], expected: readonly K[]): GlobalOrder<K> {
  const { lost, duplicated, unexpected } = reckon(handled, expected);
  const position = new Map(expected.map((key, i) => [key, i]));
  const outOfOrder: string[] = [];
  let latest: K | undefined;
  for (const key of handled) {
    const at = position.get(key);
    if (at === undefined) continue;
    if (latest !== undefined && at < (position.get(latest) as number) && outOfOrder.length < 20) outOfOrder.push(`${String(latest)} before ${String(key)}`);
    if (latest === undefined || at > (position.get(latest) as number)) latest = key;
  }
  return { lost, duplicated, unexpected, outOfOrder };
}

/** A filter that keeps the first handling of each message (`key:n`). */
function firstOfEach<H extends Keyed>(): (h: H) => boolean {
  const seen = new Set<string>();
  return (h) => {
    const id = `${h.key}\u0000${h.n}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  };
}
