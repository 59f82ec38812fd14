/**
 * Counters and histograms per pattern, kept in the process and read when metrics are collected (a Prometheus scrape,
 * an OpenTelemetry collection): recording is a map lookup and an increment, with no exporter call per message.
 * Exists only when `observability.metrics` exports something; the call sites hold it as optional (a null check).
 */

/** Every counter, in the order of `SeriesData.counters`. Names are the metric names without prefix and `_total`. */
export const COUNTERS = [
  'published',
  'received',
  'acked',
  'failed',
  'retried',
  'dead_lettered',
  'reclaimed',
  'fenced_commits',
  'duplicates_skipped',
  'schema_invalid',
  'lost_to_trimming',
  'decode_failures',
] as const;
export type CounterName = (typeof COUNTERS)[number];

/** Every histogram (seconds). */
export const HISTOGRAMS = ['handler_duration', 'end_to_end_latency', 'publish_duration'] as const;
export type HistogramName = (typeof HISTOGRAMS)[number];

/** Upper bounds (seconds) of the histogram buckets, from a millisecond to a minute. */
export const BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Pattern label of the patterns beyond `maxPatternLabels`. */
export const OTHER_PATTERN = '_other';

/** Longest pattern label; longer patterns are cut (they are still counted apart only by their first characters). */
const MAX_LABEL_CHARS = 120;

/** Most streams remembered (each maps to a pattern label); beyond it, streams share the `_other` series. */
const MAX_STREAMS = 4_096;

export interface HistogramData {
  /** Cumulative-free counts per bucket of BUCKETS_SECONDS, plus one for +Inf. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

/** The values of one label set. */
export interface SeriesData {
  readonly pattern: string;
  readonly counters: Float64Array;
  readonly histograms: readonly HistogramData[];
}

const COUNTER_INDEX = new Map<CounterName, number>(COUNTERS.map((name, i) => [name, i]));
const HISTOGRAM_INDEX = new Map<HistogramName, number>(HISTOGRAMS.map((name, i) => [name, i]));

/** A listener of histogram observations (the OpenTelemetry exporter records them as they happen). */
export type ObservationListener = (histogram: HistogramName, pattern: string, seconds: number) => void;

export class LabelledMetrics {
  private readonly byPattern = new Map<string, SeriesData>();
  private readonly streamSeries = new Map<string, SeriesData>();
  private listener?: ObservationListener;

  /**
   * @param patternOf the pattern of a consumed stream (a partition stream belongs to its topic's pattern).
   * @param maxPatterns bound of the pattern label (observability.metrics.maxPatternLabels).
   */
  constructor(
    private readonly patternOf: (stream: string) => string,
    private readonly maxPatterns: number,
  ) {}

  /** Adds `n` to a counter of the stream's pattern. */
  count(counter: CounterName, stream: string, n = 1): void {
    this.seriesOfStream(stream).counters[COUNTER_INDEX.get(counter) as number] += n;
  }

  /** Adds `n` to a counter of a pattern (producer side: the pattern is known, the stream may not be). */
  countPattern(counter: CounterName, pattern: string, n = 1): void {
    this.seriesOfPattern(pattern).counters[COUNTER_INDEX.get(counter) as number] += n;
  }

  observe(histogram: HistogramName, stream: string, seconds: number): void {
    this.record(histogram, this.seriesOfStream(stream), seconds);
  }

  observePattern(histogram: HistogramName, pattern: string, seconds: number): void {
    this.record(histogram, this.seriesOfPattern(pattern), seconds);
  }

  /** A handler finished: the end-to-end latency, from the entry id's time (when Redis stored the entry) to now. */
  handled(stream: string, entryId: string): void {
    const storedAtMs = Number(entryId.slice(0, entryId.indexOf('-')));
    if (storedAtMs > 0) this.observe('end_to_end_latency', stream, Math.max(0, Date.now() - storedAtMs) / 1_000);
  }

  onObservation(listener: ObservationListener): void {
    this.listener = listener;
  }

  /** Every label set seen so far (at most maxPatternLabels + 1). */
  series(): IterableIterator<SeriesData> {
    return this.byPattern.values();
  }

  private record(histogram: HistogramName, series: SeriesData, seconds: number): void {
    const data = series.histograms[HISTOGRAM_INDEX.get(histogram) as number];
    let i = 0;
    while (i < BUCKETS_SECONDS.length && seconds > BUCKETS_SECONDS[i]) i++;
    data.buckets[i]++;
    data.sum += seconds;
    data.count++;
    this.listener?.(histogram, series.pattern, seconds);
  }

  private seriesOfStream(stream: string): SeriesData {
    let series = this.streamSeries.get(stream);
    if (series) return series;
    series = this.seriesOfPattern(this.patternOf(stream));
    if (this.streamSeries.size < MAX_STREAMS) this.streamSeries.set(stream, series);
    return series;
  }

  private seriesOfPattern(pattern: string): SeriesData {
    let series = this.byPattern.get(pattern);
    if (series) return series;
    // Bounded cardinality: patterns beyond the cap share one series.
    const label = this.byPattern.size < this.maxPatterns ? pattern.slice(0, MAX_LABEL_CHARS) : OTHER_PATTERN;
    series = this.byPattern.get(label);
    if (!series) {
      series = {
        pattern: label,
        counters: new Float64Array(COUNTERS.length),
        histograms: HISTOGRAMS.map(() => ({ buckets: new Float64Array(BUCKETS_SECONDS.length + 1), sum: 0, count: 0 })),
      };
      this.byPattern.set(label, series);
    }
    return series;
  }
}
