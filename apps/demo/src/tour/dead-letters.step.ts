import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { DeadLetterManager, RedisStreamsClient, StreamEvent, type DeadLetter } from 'nestjs-redis-streams-enterprise';
import { lastValueFrom } from 'rxjs';
import { fmt } from '../summary.js';
import { TOUR_GROUP } from './tour.config.js';
import { StepReport, waitUntil, type Tour } from './tour-checks.js';

export const INVOICES_ISSUED = 'invoices.issued';
const DEAD_LETTER_TIMEOUT_MS = 10_000;

export interface Invoice {
  readonly invoiceId: string;
  readonly accountId: string;
  /** Decimal text as an upstream system sends it, e.g. "12.50". */
  readonly amount: string;
}

export class AmountFormatError extends Error {
  override readonly name = 'AmountFormatError';
}

/**
 * How amounts are parsed. `acceptDecimalComma` stands for the fix that gets deployed once the dead letter shows
 * what went wrong (a supplier sends "12,50").
 */
export class AmountRules {
  acceptDecimalComma = false;

  toCents(amount: string): number {
    const text = this.acceptDecimalComma ? amount.replace(',', '.') : amount;
    if (!/^\d+(\.\d{1,2})?$/.test(text)) throw new AmountFormatError(`amount "${amount}" is not a decimal number with a dot`);
    return Math.round(Number(text) * 100);
  }
}

/** Invoices booked and handler attempts, shared by both consumers through DI. */
export class InvoiceBook {
  readonly booked: { invoiceId: string; cents: number }[] = [];
  readonly attempts = new Map<string, number>();
}

@Controller()
export class InvoicesController {
  constructor(
    private readonly rules: AmountRules,
    private readonly book: InvoiceBook,
  ) {}

  /** Throws for an amount it cannot parse: retried in place (the account waits), then dead-lettered. */
  @StreamEvent(INVOICES_ISSUED)
  onIssued(@Payload() invoice: Invoice): void {
    this.book.attempts.set(invoice.invoiceId, (this.book.attempts.get(invoice.invoiceId) ?? 0) + 1);
    this.book.booked.push({ invoiceId: invoice.invoiceId, cents: this.rules.toCents(invoice.amount) });
  }
}

/**
 * Step 5: five invoices of one account, the third with an amount the handler cannot parse. It is retried
 * `ordering.retryAttempts` times, dead-lettered with its reason and error, and the invoices behind it go on. After
 * the "fix", a redrive delivers it again, and it is booked once.
 */
export async function runDeadLettersStep(tour: Tour): Promise<StepReport> {
  const report = new StepReport('tour 5 dead letters');
  const client = tour.producer.get(RedisStreamsClient);
  const deadLetters = tour.producer.get(DeadLetterManager);
  const [consumer] = tour.consumers;
  const book = consumer.app.get(InvoiceBook);
  const rules = consumer.app.get(AmountRules);
  const invoices: Invoice[] = ['40.00', '12.50', '12,50', '7.25', '99.99'].map((amount, i) => ({ invoiceId: `inv-${i + 1}`, accountId: 'acct-ada', amount }));
  const poison = invoices[2];

  tour.log(`Tour 5/5: dead letters on "${INVOICES_ISSUED}": ${invoices.length} invoices of one account, ${poison.invoiceId} has amount "${poison.amount}"`);
  tour.log('  (the consumer warnings and the dead-letter error logged next are expected)');
  for (const invoice of invoices) await lastValueFrom(client.emit(INVOICES_ISSUED, invoice));

  const parked = await waitUntil(async () => book.booked.length >= invoices.length - 1 && (await deadLetters.count(INVOICES_ISSUED)) >= 1, DEAD_LETTER_TIMEOUT_MS);
  const letters: DeadLetter[] = await deadLetters.list(INVOICES_ISSUED, { group: TOUR_GROUP });
  const letter = letters[0];
  const bookedBefore = book.booked.map((b) => b.invoiceId);
  if (letter) {
    tour.log(
      `  deadLetterManager.list(): ${(letter.data as Invoice | undefined)?.invoiceId ?? '?'} reason=${letter.reason} ` +
        `error=${letter.errorName}: ${letter.errorMessage} deliveries=${letter.deliveries} stream=${letter.stream}`,
    );
  } else {
    tour.log('  deadLetterManager.list(): no dead letter');
  }
  tour.log(`  booked meanwhile: ${bookedBefore.join(', ') || 'nothing'} (${poison.invoiceId} tried ${book.attempts.get(poison.invoiceId) ?? 0} times)`);
  report.row(
    'poison message dead-lettered',
    letter ? `${(letter.data as Invoice | undefined)?.invoiceId ?? '?'}: ${letter.reason}, ${letter.errorName}, ${book.attempts.get(poison.invoiceId) ?? 0} attempts; booked ${bookedBefore.join(' ')}` : 'no dead letter',
    parked &&
      letters.length === 1 &&
      (letter.data as Invoice | undefined)?.invoiceId === poison.invoiceId &&
      letter.reason === 'max-deliveries' &&
      letter.errorName === 'AmountFormatError' &&
      bookedBefore.join(',') === invoices.filter((i) => i !== poison).map((i) => i.invoiceId).join(','),
    `${poison.invoiceId} was not dead-lettered once as max-deliveries with its error, or the other invoices were not booked in order`,
  );

  // The fix is deployed (here: a flag on the provider both consumers share), then the dead letter is redriven.
  rules.acceptDecimalComma = true;
  const redrive = await deadLetters.redrive(INVOICES_ISSUED, { errorName: 'AmountFormatError' });
  const booked = await waitUntil(() => book.booked.some((b) => b.invoiceId === poison.invoiceId), DEAD_LETTER_TIMEOUT_MS);
  // A second redelivery would show up within this time.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const left = await deadLetters.count(INVOICES_ISSUED);
  const poisonBooked = book.booked.filter((b) => b.invoiceId === poison.invoiceId);
  tour.log(
    `  after the fix: redrive({ errorName: 'AmountFormatError' }) moved ${redrive.redriven.length} back; ` +
      `${poison.invoiceId} booked ${poisonBooked.length}x (${poisonBooked.map((b) => fmt.money(b.cents)).join(', ') || '-'}); dead letters left: ${left}`,
  );
  report.row(
    'redrive after the fix',
    `${redrive.redriven.length} redriven, ${poison.invoiceId} booked ${poisonBooked.length}x, ${left} dead letters left`,
    booked && redrive.redriven.length === 1 && poisonBooked.length === 1 && poisonBooked[0].cents === 1_250 && left === 0,
    `the redriven ${poison.invoiceId} was not booked exactly once, or dead letters were left`,
  );
  return report;
}
