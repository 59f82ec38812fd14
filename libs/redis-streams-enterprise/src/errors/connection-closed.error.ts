import { RedisStreamsError } from './redis-streams.error.js';

/** Thrown for operations on a client or server that was closed, and for requests still pending at close. */
export class ConnectionClosedError extends RedisStreamsError {
  constructor(what: string) {
    super('CONNECTION_CLOSED', `${what} was closed; create a new instance or call connect() again`);
  }
}
