import type { ReplayProgress } from '../replay/replay-request.js';
import { eta, replayProgressView } from './progress.js';

const T0 = 1_700_000_000_000;
const progress = (scanned: number, atSeconds: number): ReplayProgress => ({ scanned, replayed: scanned, skipped: 0, failed: 0, lastId: `${T0 + atSeconds * 1_000}-0` });

function terminal(isTTY = true, columns = 120) {
  const out = { text: '', isTTY, columns, write: (chunk: string) => (out.text += chunk) };
  return out;
}

describe('replayProgressView', () => {
  it('draws one line in place on a terminal: the position in the time range, the counts, the time left; stop() erases it', () => {
    let now = 0;
    const stderr = terminal();
    const view = replayProgressView(stderr, { startMs: T0, endMs: T0 + 100_000 }, () => now);
    expect(stderr.text).toMatch(/^\rreplay \|░+\| 0% \| 0 scanned, 0 replayed, 0 skipped, 0 failed \| ETA --:--\x1b\[K$/);
    now = 10_000;
    view.update(progress(50, 25));
    const drawn = stderr.text.split('\r').at(-1)!;
    expect(drawn).toMatch(/^replay \|█{10}░{30}\| 25% \| 50 scanned, 50 replayed, 0 skipped, 0 failed \| ETA 00:30\x1b\[K$/);
    view.stop();
    expect(stderr.text.endsWith('\r\x1b[K')).toBe(true);
    const length = stderr.text.length;
    view.update(progress(60, 30));
    view.stop();
    expect(stderr.text.length).toBe(length); // nothing after stop
  });

  it('redraws at most every 200 ms', () => {
    let now = 0;
    const stderr = terminal();
    const view = replayProgressView(stderr, { startMs: T0, endMs: T0 + 100_000 }, () => now);
    for (let i = 1; i <= 10; i++) {
      now += 50;
      view.update(progress(i, i));
    }
    expect(stderr.text.split('\r').filter((l) => l.startsWith('replay')).length).toBe(3); // at 0, 200 and 400 ms
    view.stop();
  });

  it('fits a narrow terminal', () => {
    const stderr = terminal(true, 80);
    replayProgressView(stderr, { startMs: T0, endMs: T0 + 1 }).stop();
    expect(stderr.text.split('\r')[1].replace('\x1b[K', '').length).toBeLessThan(80);
  });

  it('draws nothing when stderr is not a terminal or the range is unknown', () => {
    for (const [stderr, span] of [[terminal(false), { startMs: T0, endMs: T0 + 1 }], [terminal(), undefined]] as const) {
      const view = replayProgressView(stderr, span);
      view.update(progress(1, 0));
      view.stop();
      expect(stderr.text).toBe('');
    }
  });
});

describe('eta', () => {
  it('extrapolates the rate so far', () => {
    expect(eta(10_000, 0.5)).toBe('ETA 00:10');
    expect(eta(60_000, 0.25)).toBe('ETA 03:00');
    expect(eta(3_600_000, 0.5)).toBe('ETA 1:00:00');
    expect(eta(0, 0)).toBe('ETA --:--');
  });
});
