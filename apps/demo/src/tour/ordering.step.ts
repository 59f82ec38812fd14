import { Controller } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  OrderingManager,
  PartitioningManager,
  RedisStreamsClient,
  RedisStreamsContext,
  StreamEvent,
  type PartitionStats,
} from 'nestjs-redis-streams-enterprise';
import { lastValueFrom } from 'rxjs';
import { fmt } from '../summary.js';
import { TOUR_PARTITIONS } from './tour.config.js';
import { isDrained, shortName, StepReport, waitUntil, type Tour, type TourConsumer } from './tour-checks.js';

export const ACCOUNTS_MOVED = 'accounts.moved';
export const ACCOUNTS = 20;
export const MOVES_PER_ACCOUNT = 50;
const BALANCE_TIMEOUT_MS = 10_000;
const DELIVERY_TIMEOUT_MS = 20_000;

/** One movement of money on an account; `seq` is its position in the account's history (0, 1, 2, ...). */
export interface Move {
  readonly accountId: string;
  readonly seq: number;
  readonly cents: number;
}

export interface HandledMove {
  readonly accountId: string;
  readonly seq: number;
  readonly consumer: string;
  readonly partition: number | undefined;
}

/** What the `accounts.moved` handlers saw, in handling order; shared by both consumers through DI (a value provider). */
export class AccountMoves {
  readonly live: HandledMove[] = [];
  /** Deliveries made by a replay (`ctx.isReplay()`), kept apart from the live ones. */
  readonly replayed: HandledMove[] = [];

  record(move: Move, ctx: RedisStreamsContext): void {
    const handled = { accountId: move.accountId, seq: move.seq, consumer: ctx.getConsumer(), partition: ctx.getPartition() };
    (ctx.isReplay() ? this.replayed : this.live).push(handled);
  }
}

@Controller()
export class AccountsController {
  constructor(private readonly moves: AccountMoves) {}

  /** Runs in order per account (ordering.partitionKey); different accounts run side by side. */
  @StreamEvent(ACCOUNTS_MOVED)
  async onMoved(@Payload() move: Move, @Ctx() ctx: RedisStreamsContext): Promise<void> {
    // A random 0-2 ms of "work": if two moves of one account could overlap, the later one would often finish first.
    if (!ctx.isReplay()) await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 3)));
    this.moves.record(move, ctx);
  }
}

export const accountId = (i: number) => `acct-${String(i).padStart(2, '0')}`;

/** Per account: are the handled `seq`s exactly 0..perAccount-1, each once, in increasing order? */
export function perAccountOrder(log: readonly HandledMove[], accounts: number, perAccount: number) {
  const byAccount = new Map<string, number[]>();
  for (const h of log) byAccount.set(h.accountId, [...(byAccount.get(h.accountId) ?? []), h.seq]);
  const outOfOrder: string[] = [];
  let missing = 0;
  let duplicates = 0;
  for (let i = 0; i < accounts; i++) {
    const seqs = byAccount.get(accountId(i)) ?? [];
    const unique = new Set(seqs).size;
    duplicates += seqs.length - unique;
    missing += perAccount - unique;
    if (seqs.some((seq, k) => k > 0 && seq <= seqs[k - 1])) outOfOrder.push(accountId(i));
  }
  return { outOfOrder, missing, duplicates };
}

/** Asks both consumers to rebalance until the topic's partitions are split evenly between them. */
async function waitForBalance(consumers: readonly TourConsumer[], pattern: string, timeoutMs: number): Promise<boolean> {
  return waitUntil(
    async () => {
      for (const consumer of consumers) await consumer.server.rebalanceNow();
      const owned = consumers.map((c) => c.server.ownedPartitions().filter((p) => p.pattern === pattern).length);
      return owned.reduce((a, b) => a + b, 0) === TOUR_PARTITIONS && Math.max(...owned) - Math.min(...owned) <= 1;
    },
    timeoutMs,
    200,
  );
}

/**
 * Step 1: a topic of 4 partitions (jump hash of `accountId`) consumed by 2 consumers of one group; each partition
 * has one owner at a time, and each account's moves are handled in the order they were published.
 */
export async function runOrderingStep(tour: Tour): Promise<StepReport> {
  const report = new StepReport('tour 1 ordering');
  const client = tour.producer.get(RedisStreamsClient);
  const partitioning = tour.producer.get(PartitioningManager);
  const moves = tour.consumers[0].app.get(AccountMoves);

  const g = tour.producer.get(OrderingManager).getOrderingGuarantees();
  tour.log(`Tour 1/5: ${ACCOUNTS} accounts x ${MOVES_PER_ACCOUNT} ordered moves on "${ACCOUNTS_MOVED}", ${TOUR_PARTITIONS} partitions, ${tour.consumers.length} consumers`);
  tour.log(
    `  orderingManager.getOrderingGuarantees(): strategy=${g.strategy} scope=${g.scope} orderingKey=${g.orderingKey} ` +
      `partitions=${g.partitions} maxConcurrency=${g.maxConcurrency} singleOwnerPerPartition=${g.singleOwnerPerPartition} ` +
      `retryAttempts=${g.retryAttempts} delivery=${g.delivery} idempotentPublishWindowMs=${g.idempotentPublishWindowMs}`,
  );
  for (const limit of g.limits) tour.log(`    limit: ${limit}`);

  const balanced = await waitForBalance(tour.consumers, ACCOUNTS_MOVED, BALANCE_TIMEOUT_MS);
  report.check(balanced, `the ${TOUR_PARTITIONS} partitions were not split evenly between the consumers within ${fmt.ms(BALANCE_TIMEOUT_MS)}`);
  for (const consumer of tour.consumers) {
    const owned = consumer.server.ownedPartitions().filter((p) => p.pattern === ACCOUNTS_MOVED).map((p) => p.partition);
    tour.log(`  ${shortName(consumer.name)} owns partitions ${owned.sort((a, b) => a - b).join(', ') || 'none'} (server.ownedPartitions())`);
  }

  // Each account's moves are published one after another (that is the order to keep); the 20 accounts in parallel.
  const emitStart = performance.now();
  await Promise.all(
    Array.from({ length: ACCOUNTS }, async (_, i) => {
      for (let seq = 0; seq < MOVES_PER_ACCOUNT; seq++) {
        const move: Move = { accountId: accountId(i), seq, cents: 100 + ((i * 31 + seq * 17) % 900) };
        await lastValueFrom(client.emit(ACCOUNTS_MOVED, move));
      }
    }),
  );
  const emitMs = performance.now() - emitStart;
  const total = ACCOUNTS * MOVES_PER_ACCOUNT;
  const delivered = await waitUntil(async () => moves.live.length >= total && (await isDrained(partitioning, ACCOUNTS_MOVED)), DELIVERY_TIMEOUT_MS);
  const deliveryMs = performance.now() - emitStart;
  tour.log(`  emitted ${fmt.int(total)} moves in ${fmt.ms(emitMs)}; ${delivered ? `all handled ${fmt.ms(deliveryMs)} after the first emit` : `only ${moves.live.length} handled after ${fmt.ms(DELIVERY_TIMEOUT_MS)}`}`);

  const order = perAccountOrder(moves.live, ACCOUNTS, MOVES_PER_ACCOUNT);
  const consumersUsed = new Set(moves.live.map((h) => h.consumer)).size;
  report.row(
    'per-account order',
    `${fmt.int(total - order.missing)} / ${fmt.int(total)} handled by ${consumersUsed} consumers, ${order.outOfOrder.length} accounts out of order, ${order.duplicates} duplicates`,
    delivered && order.missing === 0 && order.duplicates === 0 && order.outOfOrder.length === 0,
    `moves lost ${order.missing}, duplicated ${order.duplicates}, out of order on ${order.outOfOrder.join(', ') || 'no account'}`,
  );

  // Owner per partition (the lease holder), and who actually handled each partition's entries.
  const stats: PartitionStats[] = await partitioning.getPartitionStats(ACCOUNTS_MOVED);
  tour.log(`  partitioningManager.getPartitionStats("${ACCOUNTS_MOVED}"):`);
  const ownersOk: boolean[] = [];
  for (const s of stats) {
    const handlers = new Set(moves.live.filter((h) => h.partition === s.partition).map((h) => h.consumer));
    const accounts = new Set(moves.live.filter((h) => h.partition === s.partition).map((h) => h.accountId)).size;
    ownersOk.push(s.owner !== null && [...handlers].every((h) => h === s.owner));
    tour.log(
      `    partition ${s.partition}  ${s.stream}  length ${s.length}  lag ${s.lag ?? '?'}  pending ${s.pending}  ` +
        `owner ${shortName(s.owner)}  (${accounts} accounts, handled by ${[...handlers].map(shortName).join(', ') || 'nobody'})`,
    );
  }
  const owners = new Set(stats.map((s) => s.owner));
  report.row(
    'partition owners',
    stats.map((s) => `p${s.partition} ${shortName(s.owner)}`).join(', '),
    balanced && owners.size === tour.consumers.length && !owners.has(null) && ownersOk.every(Boolean),
    'partitions were not each owned by one consumer, split between both, with every entry handled by its owner',
  );
  report.row('publish -> handled', `${fmt.int(total)} ordered moves in ${fmt.ms(deliveryMs)} (${fmt.rate(total, deliveryMs)} moves/s)`);
  return report;
}
