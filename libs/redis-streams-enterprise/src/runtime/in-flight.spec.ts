import { InFlight } from './in-flight.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('InFlight: slots given back before an entry settles', () => {
  it('frees the slot for the next entry while the entry stays tracked until it settles', async () => {
    const inFlight = new InFlight(1, Date.now, 2);
    const acked = deferred();
    let free!: () => void;
    const settled = inFlight.run('s', '1-0', (freeSlot) => {
      free = freeSlot;
      return acked.promise;
    });
    expect(inFlight.available).toBe(0);
    free();
    free(); // a second call changes nothing
    expect(inFlight.available).toBe(1);
    expect(inFlight.size).toBe(0);
    expect(inFlight.has('s', '1-0')).toBe(true);
    expect(inFlight.olderThan(0).get('s')).toEqual(['1-0']);
    // close() still waits for it.
    let drained = false;
    const drain = inFlight.drain(60_000).then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    acked.resolve();
    await settled;
    await drain;
    expect(inFlight.has('s', '1-0')).toBe(false);
    expect(inFlight.available).toBe(1);
  });

  it('bounds the entries that wait for their acknowledgement by settlingLimit', async () => {
    const inFlight = new InFlight(2, Date.now, 2);
    const acks = [deferred(), deferred(), deferred()];
    for (const [i, ack] of acks.slice(0, 2).entries()) {
      void inFlight.run('s', `${i}-0`, (freeSlot) => {
        freeSlot();
        return ack.promise;
      });
    }
    // Two slots free, but two entries already wait for acks: nothing more may start.
    expect(inFlight.size).toBe(0);
    expect(inFlight.available).toBe(0);
    let woke = false;
    const waiting = inFlight.whenAvailable().then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    acks[0]!.resolve();
    await waiting;
    expect(inFlight.available).toBe(1);
    acks[1]!.resolve();
    await inFlight.drain(1_000);
    expect(inFlight.available).toBe(2);
  });
});
