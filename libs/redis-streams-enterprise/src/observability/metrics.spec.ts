import { TransportMetrics } from './metrics.js';

describe('TransportMetrics', () => {
  it('computes percentiles, error rate and a 10 s throughput window', () => {
    let now = 1_000_000;
    const metrics = new TransportMetrics(() => now);
    for (let i = 1; i <= 100; i++) metrics.recordLatency(i);
    metrics.received = 100;
    metrics.failed = 5;
    metrics.recordAcks(50);
    now += 1_000;
    metrics.recordAcks(50);
    const snap = metrics.snapshot(3);
    expect(snap.handlerLatencyMs).toMatchObject({ p50: 51, p99: 100, max: 100, samples: 100 });
    expect(snap.errorRate).toBe(0.05);
    expect(snap.throughput).toBe(10);
    expect(snap.inFlight).toBe(3);
    now += 20_000;
    expect(metrics.snapshot(0).throughput).toBe(0);
  });

  it('keeps a fixed-size latency reservoir', () => {
    const metrics = new TransportMetrics();
    for (let i = 0; i < 10_000; i++) metrics.recordLatency(i);
    expect(metrics.snapshot(0).handlerLatencyMs.samples).toBe(2_048);
  });
});
