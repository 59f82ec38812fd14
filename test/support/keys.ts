import { StreamKeys } from '../../libs/redis-streams-enterprise/src/connection/stream-keys.js';

/**
 * Redis key names for tests: the library's own naming (StreamKeys: `stream`, `deadLetter`, `partition`, `layout`,
 * `leaseOf`, `doorbell`, `blobOf`, ...), plus the keys tests write themselves. Tests never concatenate key strings,
 * so a change of the key layout breaks the library's own spec, not every test that looks at a key.
 *
 * Exceptions: the `*.redis.e2e-spec.ts` files keep literal keys where the literal is what they test (the raw layout),
 * and the child processes (`consumer-process.mjs`, `ordered-consumer-process.mjs`, plain JavaScript on the built
 * library) name their side-effect keys in the same shape as `testOwned` and `beside` below.
 */
export class TestKeys extends StreamKeys {
  /** A key a test (or a test's child process) writes itself, apart from the library's: `<prefix>:test:<name>`. */
  testOwned(name: string): string {
    return `${this.prefix}:test:${name}`;
  }

  /**
   * A test's own key beside a stream or partition, in its hash slot (so a handler's ctx.transaction() may write it):
   * `<stream>:<name>`.
   */
  beside(stream: string, name: string): string {
    return beside(stream, name);
  }
}

/** `TestKeys.beside` without a prefix at hand (a handler that has only its context's stream). */
export function beside(stream: string, name: string): string {
  return `${stream}:${name}`;
}

/** `testKeys(prefix).stream('orders')`, `.deadLetter('orders')`, `.partition('orders', 0)`, `.testOwned('processed')`. */
export function testKeys(prefix: string): TestKeys {
  return new TestKeys(prefix);
}
