import { BUCKETS_SECONDS, COUNTERS, HISTOGRAMS, LabelledMetrics, OTHER_PATTERN } from './labelled-metrics.js';

describe('LabelledMetrics', () => {
  it('counts per pattern of a stream, looking the pattern up once per stream', () => {
    const lookups: string[] = [];
    const metrics = new LabelledMetrics((stream) => {
      lookups.push(stream);
      return stream.replace(/^p:\{(.*?)(#\d+)?\}$/, '$1');
    }, 10);
    metrics.count('received', 'p:{orders#0}');
    metrics.count('received', 'p:{orders#1}', 2);
    metrics.count('received', 'p:{orders#0}');
    metrics.countPattern('published', 'orders');
    const [orders] = [...metrics.series()];
    expect(orders.pattern).toBe('orders');
    expect(orders.counters[COUNTERS.indexOf('received')]).toBe(4);
    expect(orders.counters[COUNTERS.indexOf('published')]).toBe(1);
    expect(lookups).toEqual(['p:{orders#0}', 'p:{orders#1}']);
  });

  it('caps the pattern label: patterns beyond maxPatterns share the _other series', () => {
    const metrics = new LabelledMetrics((s) => s, 3);
    for (let i = 0; i < 50; i++) metrics.countPattern('published', `made-up.${i}`);
    const series = [...metrics.series()];
    expect(series.map((s) => s.pattern)).toEqual(['made-up.0', 'made-up.1', 'made-up.2', OTHER_PATTERN]);
    expect(series[3].counters[COUNTERS.indexOf('published')]).toBe(47);
  });

  it('puts observations into fixed buckets and tells a listener', () => {
    const metrics = new LabelledMetrics((s) => s, 10);
    const heard: [string, string, number][] = [];
    metrics.onObservation((h, pattern, seconds) => heard.push([h, pattern, seconds]));
    metrics.observePattern('publish_duration', 'a', 0.0005);
    metrics.observePattern('publish_duration', 'a', 0.003);
    metrics.observePattern('publish_duration', 'a', 120);
    const data = [...metrics.series()][0].histograms[HISTOGRAMS.indexOf('publish_duration')];
    expect(data.count).toBe(3);
    expect(data.buckets[0]).toBe(1); // <= 1 ms
    expect(data.buckets[BUCKETS_SECONDS.indexOf(0.005)]).toBe(1);
    expect(data.buckets[BUCKETS_SECONDS.length]).toBe(1); // +Inf
    expect(heard).toHaveLength(3);
  });

  it('measures end-to-end latency from the entry id time', () => {
    const metrics = new LabelledMetrics((s) => s, 10);
    metrics.handled('s', `${Date.now() - 2_000}-0`);
    const data = [...metrics.series()][0].histograms[HISTOGRAMS.indexOf('end_to_end_latency')];
    expect(data.count).toBe(1);
    expect(data.sum).toBeGreaterThanOrEqual(2);
    expect(data.sum).toBeLessThan(3);
  });
});
