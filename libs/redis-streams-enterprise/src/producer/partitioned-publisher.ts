/**
 * Publishing to partitioned topics, apart from the client (which encodes and writes): routing may take different
 * numbers of steps (the layout may be read from Redis) and a topic's partition count may change while messages are
 * in flight, yet one producer's messages must reach Redis in the order they were emitted. A LayoutGate per topic
 * with messages in flight orders them; writes refused as stale are routed again under the new layout.
 */
import { LayoutGate } from '../partitioning/layout-gate.js';
import type { PartitioningManager, PartitionRoute } from '../partitioning/partitioning.manager.js';
import type { PublishOutcome } from './entry-publisher.js';
import { PartitionLayoutError } from '../errors/partition-layout.error.js';

/** How a message's routing is chosen besides its payload. */
export interface RoutingHints {
  readonly partitionKey?: string;
  readonly idempotencyKey?: string;
}

/** Encodes and writes the message to the routed partition. */
export type RoutedSend = (route: PartitionRoute) => Promise<PublishOutcome>;

/** Most routings of one message while its topic's layout keeps changing. */
const MAX_REROUTES = 50;

export class PartitionedPublisher {
  /** Per partitioned topic with messages in flight: keeps their order across partition count changes. */
  private readonly layoutGates = new Map<string, LayoutGate>();

  constructor(private readonly partitioning: PartitioningManager) {}

  /**
   * Routes one message and sends it in emit order. Call it when the message is emitted: its turn is taken before
   * the first await. `prepared` (e.g. the schema check) is awaited after that, before the message's turn: however
   * long it takes, later messages wait (and when it fails, nothing is sent and they go on).
   * @returns the entry id (the first one's for a duplicate).
   */
  async publish(pattern: string, data: unknown, hints: RoutingHints, send: RoutedSend, prepared?: Promise<void>): Promise<string> {
    const gate = this.gateOf(pattern);
    // The ticket is taken now, in emit order; the message reaches the connection only after every earlier one.
    const ticket = gate.ticket();
    let entered = false;
    try {
      await prepared;
      let route = this.partitioning.routeCachedToSend(pattern, data, hints) ?? (await this.partitioning.routeToSend(pattern, data, hints));
      // Turn first, then the layout gate: waiting in the gate only ever depends on messages sent already.
      const turn = gate.sendTurn(ticket);
      if (turn) await turn;
      // Routed (from the cache, when emitted) before an earlier message saw a newer layout? Sent as it is, it would be
      // refused as stale and re-routed while later messages of its key, admitted under the newer layout, are written
      // ahead of it: route it again now, still holding its turn, until its layout is at least the newest admitted.
      for (let attempt = 1; route.epoch < gate.newestEpoch; attempt++) {
        if (attempt > MAX_REROUTES) throw new PartitionLayoutError('STALE_PARTITION_LAYOUT', pattern, `The partition layout of "${pattern}" could not be read as new as one already used; the message was not written`);
        // A layout request already on its way may have been sent before the change: wait for a newer answer.
        if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, Math.min(100, attempt * 5)));
        this.partitioning.invalidate(pattern);
        route = await this.partitioning.routeToSend(pattern, data, hints);
      }
      if (!gate.tryEnter(route.epoch)) await gate.enter(route.epoch);
      entered = true;
      const sending = send(route);
      gate.sent(ticket);
      const first = await sending;
      if (first.status !== 'stale') return first.id;
      return await this.reroute(gate, pattern, data, hints, send);
    } finally {
      gate.sent(ticket); // also when routing failed: later messages must not wait for this one
      if (entered) gate.leave();
      if (gate.idle) this.layoutGates.delete(pattern);
    }
  }

  private gateOf(pattern: string): LayoutGate {
    let gate = this.layoutGates.get(pattern);
    if (!gate) {
      gate = new LayoutGate();
      this.layoutGates.set(pattern, gate);
    }
    return gate;
  }

  /** The topic's partition count changed: route again, in turn with the other refused messages. */
  private async reroute(gate: LayoutGate, pattern: string, data: unknown, hints: RoutingHints, send: RoutedSend): Promise<string> {
    const done = await gate.retryTurn();
    try {
      for (let attempt = 1; ; attempt++) {
        this.partitioning.invalidate(pattern);
        const outcome = await send(await this.partitioning.routeToSend(pattern, data, hints));
        if (outcome.status !== 'stale') return outcome.id;
        if (attempt >= MAX_REROUTES) throw new PartitionLayoutError('STALE_PARTITION_LAYOUT', pattern, `The partition layout of "${pattern}" kept changing; the message was not written`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, attempt * 5)));
      }
    } finally {
      done();
    }
  }
}
