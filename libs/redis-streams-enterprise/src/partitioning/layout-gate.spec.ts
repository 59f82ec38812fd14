import { LayoutGate } from './layout-gate.js';

/** Lets every pending promise continuation run (the gate uses promises only, no timers). */
async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Starts `enter(epoch)` and records when it was admitted. */
function track(gate: LayoutGate, epoch: number, admitted: string[], name: string): Promise<void> {
  return gate.enter(epoch).then(() => {
    admitted.push(name);
  });
}

describe('LayoutGate: epochs', () => {
  it('admits the first message of any epoch at once', async () => {
    const gate = new LayoutGate();
    await expect(gate.enter(7)).resolves.toBeUndefined();
    expect(gate.idle).toBe(false);
  });

  it('admits messages of one epoch side by side', async () => {
    const gate = new LayoutGate();
    const admitted: string[] = [];
    await Promise.all([track(gate, 1, admitted, 'a'), track(gate, 1, admitted, 'b'), track(gate, 1, admitted, 'c')]);
    expect(admitted).toEqual(['a', 'b', 'c']);
  });

  it('holds a message of a newer epoch until every older one in flight left', async () => {
    const gate = new LayoutGate();
    await gate.enter(1);
    await gate.enter(1);
    const admitted: string[] = [];
    const newer = track(gate, 2, admitted, 'new');
    await settle();
    expect(admitted).toEqual([]);

    gate.leave();
    await settle();
    expect(admitted).toEqual([]); // one epoch-1 message is still in flight

    gate.leave();
    await newer;
    expect(admitted).toEqual(['new']);
  });

  it('does not hold same-epoch messages once the newer epoch is in', async () => {
    const gate = new LayoutGate();
    await gate.enter(1);
    const admitted: string[] = [];
    const first = track(gate, 2, admitted, 'first');
    gate.leave();
    await first;
    // 'first' (epoch 2) is in flight: another epoch-2 message passes at once.
    await track(gate, 2, admitted, 'second');
    expect(admitted).toEqual(['first', 'second']);
  });

  it('admits every waiter of the newer epoch together', async () => {
    const gate = new LayoutGate();
    await gate.enter(3);
    const admitted: string[] = [];
    const waiting = [track(gate, 4, admitted, 'x'), track(gate, 4, admitted, 'y'), track(gate, 4, admitted, 'z')];
    await settle();
    expect(admitted).toEqual([]);
    gate.leave();
    await Promise.all(waiting);
    expect(admitted).toEqual(['x', 'y', 'z']);
  });

  it('keeps a waiter of an even newer epoch waiting for the epoch admitted before it', async () => {
    const gate = new LayoutGate();
    await gate.enter(1);
    const admitted: string[] = [];
    const two = track(gate, 2, admitted, 'two');
    const three = track(gate, 3, admitted, 'three');
    gate.leave(); // the epoch-1 message is stored
    await two;
    await settle();
    expect(admitted).toEqual(['two']);
    gate.leave(); // the epoch-2 message is stored
    await three;
    expect(admitted).toEqual(['two', 'three']);
  });

  it('does not hold a message routed by an older layout (Redis refuses it and it is routed again)', async () => {
    const gate = new LayoutGate();
    await gate.enter(5);
    await expect(gate.enter(4)).resolves.toBeUndefined();
    // The gate keeps the newest epoch: a message of epoch 5 still passes, one of 6 waits for both.
    await gate.enter(5);
    const admitted: string[] = [];
    const six = track(gate, 6, admitted, 'six');
    gate.leave();
    gate.leave();
    await settle();
    expect(admitted).toEqual([]);
    gate.leave();
    await six;
    expect(admitted).toEqual(['six']);
  });
});

describe('LayoutGate: retry turns', () => {
  it('grants turns strictly in request order, one at a time', async () => {
    const gate = new LayoutGate();
    const granted: string[] = [];
    const turns = ['r1', 'r2', 'r3', 'r4'].map((name) =>
      gate.retryTurn().then((done) => {
        granted.push(name);
        return done;
      }),
    );
    const done1 = await turns[0];
    await settle();
    expect(granted).toEqual(['r1']);

    done1();
    const done2 = await turns[1];
    await settle();
    expect(granted).toEqual(['r1', 'r2']);

    done2();
    const done3 = await turns[2];
    done3();
    const done4 = await turns[3];
    expect(granted).toEqual(['r1', 'r2', 'r3', 'r4']);
    done4();
  });

  it('grants a turn at once when no other is taken, also after earlier turns ended', async () => {
    const gate = new LayoutGate();
    const done = await gate.retryTurn();
    done();
    const again = await gate.retryTurn();
    again();
    await expect(gate.retryTurn()).resolves.toEqual(expect.any(Function));
  });

  it('ignores a second call of a done function', async () => {
    const gate = new LayoutGate();
    const done1 = await gate.retryTurn();
    const second = gate.retryTurn();
    const third = gate.retryTurn();
    let thirdGranted = false;
    void third.then(() => {
      thirdGranted = true;
    });
    done1();
    done1();
    await second;
    await settle();
    expect(thirdGranted).toBe(false);
  });
});

describe('LayoutGate: idle', () => {
  it('is idle when new and again when every message left', async () => {
    const gate = new LayoutGate();
    expect(gate.idle).toBe(true);
    await gate.enter(1);
    await gate.enter(1);
    expect(gate.idle).toBe(false);
    gate.leave();
    expect(gate.idle).toBe(false);
    gate.leave();
    expect(gate.idle).toBe(true);
  });

  it('is not idle while a message waits', async () => {
    const gate = new LayoutGate();
    await gate.enter(1);
    const waiting = gate.enter(2);
    await settle();
    expect(gate.idle).toBe(false);
    gate.leave();
    await waiting;
    expect(gate.idle).toBe(false); // the epoch-2 message is in flight now
    gate.leave();
    expect(gate.idle).toBe(true);
  });

  it('is not idle between waking a waiter and admitting it', async () => {
    const gate = new LayoutGate();
    await gate.enter(1);
    const waiting = gate.enter(2);
    await settle();
    gate.leave();
    expect(gate.idle).toBe(false);
    await waiting;
  });
});
