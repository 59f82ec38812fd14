import type { MultiSlotReader } from '../cluster/multi-slot-reader.js';
import type { EntryReader } from './consumer-loop.js';

/** The server's reading of its topics' streams on a Cluster: rounds of slot reads, waiting on the doorbell when idle. */
export class ClusterEntryReader implements EntryReader {
  constructor(
    private readonly reader: MultiSlotReader,
    private readonly streams: readonly string[],
    private readonly blockMs: number,
  ) {}

  async read(count: number): Promise<{ replies: unknown[]; error?: unknown }> {
    const result = await this.reader.read(this.streams, () => count, count);
    if (result.entries === 0 && result.error === undefined) await this.reader.wait(this.blockMs);
    return result;
  }
}
