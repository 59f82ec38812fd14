/**
 * The requests a client sent (`send()`) and waits to hear from: capped at `client.maxPendingRequests`, each with its
 * `client.requestTimeoutMs` timer (unref()'d, cleared when it settles), so a reply that never comes holds nothing.
 */
import type { WritePacket } from '@nestjs/microservices';
import { RemoteHandlerError } from '../errors/remote-handler.error.js';
import { RequestTimeoutError } from '../errors/request-timeout.error.js';
import { TooManyPendingRequestsError } from '../errors/too-many-pending-requests.error.js';
import type { ReplyMessage } from '../wire/envelope.js';

interface PendingRequest {
  readonly callback: (packet: WritePacket) => void;
  readonly timer: NodeJS.Timeout;
}

export class PendingRequests {
  private readonly pending = new Map<string, PendingRequest>();

  constructor(
    private readonly maxPending: number,
    private readonly timeoutMs: number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  has(requestId: string): boolean {
    return this.pending.has(requestId);
  }

  /**
   * Waits for the replies of `requestId`; after the timeout `callback` gets RequestTimeoutError.
   * @returns the function that forgets the request (Nest calls it when the subscriber unsubscribes).
   * @throws TooManyPendingRequestsError at the cap.
   */
  add(requestId: string, pattern: string, callback: (packet: WritePacket) => void): () => void {
    if (this.pending.size >= this.maxPending) throw new TooManyPendingRequestsError(this.maxPending);
    const timer = setTimeout(() => {
      this.forget(requestId);
      callback({ err: new RequestTimeoutError(pattern, this.timeoutMs), isDisposed: true });
    }, this.timeoutMs);
    timer.unref();
    this.pending.set(requestId, { callback, timer });
    return () => this.forget(requestId);
  }

  /** Settles `requestId` with an error (its send failed); nothing when it is gone already. */
  fail(requestId: string, error: unknown): void {
    const request = this.pending.get(requestId);
    if (!request) return;
    this.forget(requestId);
    request.callback({ err: error, isDisposed: true });
  }

  /** Hands a reply to its request: a value (the last one settles it) or the handler's error. Late replies are dropped. */
  answer(reply: ReplyMessage): void {
    const request = this.pending.get(reply.requestId);
    if (!request) return; // timed out or disposed already
    if (reply.done) this.forget(reply.requestId);
    if (reply.err) {
      const { message, name, code, status } = reply.err;
      request.callback({ err: new RemoteHandlerError(message, name, code, status), isDisposed: true });
      return;
    }
    request.callback({ response: reply.response, isDisposed: reply.done });
  }

  /** Settles every request with `error` (close()). */
  failAll(error: unknown): void {
    for (const requestId of [...this.pending.keys()]) this.fail(requestId, error);
  }

  private forget(requestId: string): void {
    const request = this.pending.get(requestId);
    if (request) clearTimeout(request.timer);
    this.pending.delete(requestId);
  }
}
