import { Controller, Inject } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  PartitioningManager,
  REDIS_STREAMS_OPTIONS,
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsRecordBuilder,
  StreamEvent,
  type ResolvedRedisStreamsConfig,
} from 'nestjs-redis-streams-enterprise';
import { lastValueFrom } from 'rxjs';
import { fmt } from '../summary.js';
import { isDrained, StepReport, storedEntries, waitUntil, type Tour } from './tour-checks.js';

export const PAYMENTS_CAPTURED = 'payments.captured';
const PUBLISHES_OF_THE_RETRIED_PAYMENT = 5;
const DELIVERY_TIMEOUT_MS = 10_000;

export interface Payment {
  readonly paymentId: string;
  readonly accountId: string;
  readonly cents: number;
}

/**
 * The balances hash of one partition. It shares the partition stream's hash tag (`{payments.captured#<n>}`), so on
 * Redis Cluster it is in the same slot and can be written in the transaction that acknowledges the message.
 */
export const balancesKey = (keyPrefix: string, partition: number) => `${keyPrefix}:bank:{${PAYMENTS_CAPTURED}#${partition}}:balances`;

/** Handler calls per payment id, shared by both consumers through DI. */
export class PaymentCalls {
  readonly calls = new Map<string, number>();

  record(paymentId: string): void {
    this.calls.set(paymentId, (this.calls.get(paymentId) ?? 0) + 1);
  }

  get total(): number {
    return [...this.calls.values()].reduce((a, b) => a + b, 0);
  }
}

@Controller()
export class PaymentsController {
  constructor(
    private readonly calls: PaymentCalls,
    @Inject(REDIS_STREAMS_OPTIONS) private readonly config: ResolvedRedisStreamsConfig,
  ) {}

  /**
   * The balance update is committed with the acknowledgement, in one Lua script: a crash before it commits nothing
   * (the message comes again), and a message processed already (same idempotency key) is acknowledged unhandled.
   */
  @StreamEvent(PAYMENTS_CAPTURED)
  onCaptured(@Payload() payment: Payment, @Ctx() ctx: RedisStreamsContext): void {
    this.calls.record(payment.paymentId);
    ctx.transaction().call('HINCRBY', balancesKey(this.config.streams.keyPrefix, ctx.getPartition() ?? 0), payment.accountId, payment.cents);
  }
}

/**
 * Step 2: one payment published 5 times with one idempotency key (a producer retrying after lost replies) is stored
 * once and handled once; the handler's balance update commits atomically with the acknowledgement.
 */
export async function runExactlyOnceStep(tour: Tour): Promise<StepReport> {
  const report = new StepReport('tour 2 exactly-once');
  const client = tour.producer.get(RedisStreamsClient);
  const partitioning = tour.producer.get(PartitioningManager);
  const calls = tour.consumers[0].app.get(PaymentCalls);
  const payments: Payment[] = [
    { paymentId: 'pay-1001', accountId: 'acct-alice', cents: 1_250 },
    { paymentId: 'pay-1002', accountId: 'acct-bob', cents: 700 },
    { paymentId: 'pay-1003', accountId: 'acct-alice', cents: 300 },
  ];
  const publish = (p: Payment) => lastValueFrom(client.emit<string>(PAYMENTS_CAPTURED, new RedisStreamsRecordBuilder(p).setIdempotencyKey(p.paymentId).build()));

  tour.log(`Tour 2/5: exactly-once on "${PAYMENTS_CAPTURED}": ${payments[0].paymentId} published ${PUBLISHES_OF_THE_RETRIED_PAYMENT} times with one idempotency key`);
  const retriedIds: string[] = [];
  for (let i = 0; i < PUBLISHES_OF_THE_RETRIED_PAYMENT; i++) retriedIds.push(await publish(payments[0]));
  for (const p of payments.slice(1)) await publish(p);
  tour.log(`  entry ids returned for ${payments[0].paymentId}: ${retriedIds.join(', ')}`);

  const handled = await waitUntil(async () => calls.total >= payments.length && (await isDrained(partitioning, PAYMENTS_CAPTURED)), DELIVERY_TIMEOUT_MS);
  const stored = await storedEntries(partitioning, PAYMENTS_CAPTURED);
  const callsText = payments.map((p) => `${p.paymentId} x${calls.calls.get(p.paymentId) ?? 0}`).join(', ');
  tour.log(`  stored ${stored} entries for ${payments.length} payments; handler calls: ${callsText}`);
  report.row(
    'idempotent publish (5x one key)',
    `${PUBLISHES_OF_THE_RETRIED_PAYMENT} publishes -> ${new Set(retriedIds).size} entry id; ${stored} stored and ${calls.total} handled for ${payments.length} payments`,
    handled && new Set(retriedIds).size === 1 && stored === payments.length && payments.every((p) => calls.calls.get(p.paymentId) === 1),
    'a payment published several times with one idempotency key was stored or handled more than once (or not at all)',
  );

  // Read the balances where the handler wrote them: the hash of the partition each account is routed to.
  const expected = new Map<string, number>();
  for (const p of payments) expected.set(p.accountId, (expected.get(p.accountId) ?? 0) + p.cents);
  const balances: string[] = [];
  const where: string[] = [];
  let balancesOk = handled;
  for (const [account, cents] of expected) {
    const { partition } = await partitioning.route(PAYMENTS_CAPTURED, { accountId: account });
    const actual = Number((await tour.redis.hget(balancesKey(tour.keyPrefix, partition), account)) ?? 0);
    balancesOk &&= actual === cents;
    balances.push(`${account} ${fmt.money(actual)}${actual === cents ? '' : ` (expected ${fmt.money(cents)})`}`);
    where.push(`${account} in ${balancesKey(tour.keyPrefix, partition)}`);
  }
  tour.log(`  balances written by ctx.transaction(): ${balances.join(', ')} (${where.join('; ')})`);
  const duplicatesSkipped = tour.consumers.reduce((sum, c) => sum + c.server.getMetrics().duplicatesSkipped, 0);
  report.row('balances via ctx.transaction()', `${balances.join(', ')}; duplicatesSkipped ${duplicatesSkipped}`, balancesOk, 'the balances differ from the sum of the payments');
  return report;
}
