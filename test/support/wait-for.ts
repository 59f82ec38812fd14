import { isDeepStrictEqual } from 'node:util';

/**
 * Polls until `predicate` holds, or fails with `message` after `timeoutMs`. Tests wait for outcomes this way
 * instead of sleeping for a fixed time.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, intervalMs = 20, message = 'condition' }: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Polls `predicate` for `forMs` and fails as soon as it is false (with `message`); it is checked once more at the
 * end of the window.
 *
 * This and `expectNothingWithin` are the only bounded waits for the ABSENCE of something a test may use (a second
 * delivery, a late duplicate, a commit by a zombie, a thief taking work): a test never sleeps and then asserts that
 * nothing happened. Waits for an outcome use `waitFor`. Fixed pauses that only pace load, hold a fault for its length
 * or let time pass as a precondition (an idle consumer) are not assertions and say so in a comment.
 */
export async function staysTrue(
  predicate: () => boolean | Promise<boolean>,
  { forMs, intervalMs = 20, message = 'condition' }: { forMs: number; intervalMs?: number; message?: string },
): Promise<void> {
  const started = Date.now();
  const deadline = started + forMs;
  for (;;) {
    if (!(await predicate())) throw new Error(`${message} stopped holding after ${Date.now() - started} ms (it had to hold for ${forMs} ms)`);
    if (Date.now() >= deadline) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}

/**
 * Nothing else happens within `ms`: what `probe` returns (a count, a list, a tuple of both) stays deep-equal to what
 * it returned at the start, or this fails naming both values. The only other allowed wait for an absence besides
 * `staysTrue` (see there). Assert the expected value itself afterwards.
 */
export async function expectNothingWithin<T>(
  ms: number,
  probe: () => T | Promise<T>,
  { intervalMs = 20, message = 'nothing else to happen' }: { intervalMs?: number; message?: string } = {},
): Promise<void> {
  const before = await probe();
  let now: T = before;
  try {
    await staysTrue(async () => isDeepStrictEqual((now = await probe()), before), { forMs: ms, intervalMs, message });
  } catch (error) {
    throw new Error(`${(error as Error).message}: expected ${describe(before)} throughout, got ${describe(now)}`);
  }
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}
