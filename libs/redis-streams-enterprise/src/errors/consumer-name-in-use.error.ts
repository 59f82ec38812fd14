import { RedisStreamsError } from './redis-streams.error.js';

/**
 * Another live instance holds this server's `consumer.consumerName` in its group. Two live instances with one name
 * would share one pending list, and each would take the other's in-flight entries as its own, so the server refuses
 * to start (and one that finds its name taken over stops reading).
 */
export class ConsumerNameInUseError extends RedisStreamsError {
  constructor(
    readonly group: string,
    readonly consumerName: string,
    /** `<host>/<pid>/<random>` of the instance holding the name, when known. */
    readonly holder: string | undefined,
    /** How long this instance waited for the name to be released (0 when it found the name taken over while running). */
    readonly waitedMs: number,
  ) {
    super(
      'CONSUMER_NAME_IN_USE',
      `Consumer name "${consumerName}" of group "${group}" is in use by another live instance` +
        `${holder ? ` (${holder})` : ''}${waitedMs > 0 ? `, still after waiting ${waitedMs} ms for its lease to expire` : ''}; ` +
        `give every running instance its own consumer.consumerName (the default <host>-<pid>-<random> is unique), ` +
        `or stop the other instance first`,
    );
  }
}
