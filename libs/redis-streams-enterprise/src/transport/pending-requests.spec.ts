import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { WritePacket } from '@nestjs/microservices';
import { PendingRequests } from './pending-requests.js';

describe('PendingRequests', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  const recorder = () => {
    const packets: WritePacket[] = [];
    return { packets, callback: (p: WritePacket) => void packets.push(p) };
  };

  it('hands streamed values on and settles with the last one; a late reply is dropped', () => {
    const pending = new PendingRequests(10, 1_000);
    const r = recorder();
    pending.add('q1', 'sum', r.callback);
    pending.answer({ requestId: 'q1', response: 1, done: false });
    pending.answer({ requestId: 'q1', response: 2, done: true });
    pending.answer({ requestId: 'q1', response: 3, done: true });
    expect(r.packets).toEqual([{ response: 1, isDisposed: false }, { response: 2, isDisposed: true }]);
    expect(pending.size).toBe(0);
  });

  it("turns the handler's error into RemoteHandlerError", () => {
    const pending = new PendingRequests(10, 1_000);
    const r = recorder();
    pending.add('q1', 'sum', r.callback);
    pending.answer({ requestId: 'q1', err: { name: 'TypeError', message: 'bad', status: 'error' }, done: true });
    expect(r.packets[0].err).toMatchObject({ name: 'RemoteHandlerError', code: 'REMOTE_HANDLER_FAILED', message: expect.stringContaining('bad') });
  });

  it('times out after requestTimeoutMs and forgets the request; dispose clears the timer', () => {
    const pending = new PendingRequests(10, 1_000);
    const late = recorder();
    const disposed = recorder();
    pending.add('q1', 'sum', late.callback);
    const dispose = pending.add('q2', 'sum', disposed.callback);
    dispose();
    jest.advanceTimersByTime(999);
    expect(late.packets).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(late.packets[0].err).toMatchObject({ code: 'REQUEST_TIMEOUT' });
    expect(disposed.packets).toEqual([]);
    expect(pending.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('refuses past the cap, and failAll settles every request once', () => {
    const pending = new PendingRequests(2, 1_000);
    const r = recorder();
    pending.add('q1', 'a', r.callback);
    pending.add('q2', 'a', r.callback);
    expect(() => pending.add('q3', 'a', r.callback)).toThrow(expect.objectContaining({ code: 'TOO_MANY_PENDING_REQUESTS' }));
    pending.failAll(new Error('closed'));
    pending.fail('q1', new Error('again'));
    expect(r.packets.map((p) => (p.err as Error).message)).toEqual(['closed', 'closed']);
    expect(jest.getTimerCount()).toBe(0);
  });
});
