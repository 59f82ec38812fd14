import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import {
  PartitioningManager,
  RedisStreamsClient,
  SchemaManager,
  SchemaRegistrationError,
  SchemaValidationError,
  StreamEvent,
} from 'nestjs-redis-streams-enterprise';
import { lastValueFrom } from 'rxjs';
import { z } from 'zod';
import { errorText, isDrained, StepReport, storedEntries, waitUntil, type Tour } from './tour-checks.js';

export const ACCOUNTS_OPENED = 'accounts.opened';
const DELIVERY_TIMEOUT_MS = 10_000;

const accountOpenedV1 = z.object({ accountId: z.string().min(1), email: z.email(), name: z.string().min(1) });
/** 2.0.0 adds an optional `plan` with a default: old messages stay readable (backward compatible). */
const accountOpenedV2 = accountOpenedV1.extend({ plan: z.enum(['free', 'pro']).default('free') });
/** A change that would break every reader of 1.0.0 and 2.0.0 messages: `accountId` becomes a number. */
const accountOpenedBreaking = accountOpenedV2.extend({ accountId: z.number().int() });

export type AccountOpened = z.output<typeof accountOpenedV2>;

/** Accounts the handler received, shared by both consumers through DI. */
export class OpenedAccounts {
  readonly received: AccountOpened[] = [];
}

@Controller()
export class SignupsController {
  constructor(private readonly accounts: OpenedAccounts) {}

  /** Reads version 2.0.0: the transport validates each message and fills in 2.0.0's defaults (`plan`). */
  @StreamEvent(ACCOUNTS_OPENED, { schema: { version: '2.0.0' } })
  onOpened(@Payload() account: AccountOpened): void {
    this.accounts.received.push(account);
  }
}

/**
 * Step 3: zod schemas registered as versions 1.0.0 and 2.0.0 of `accounts.opened` (compatibility checked at
 * registration, an incompatible 3.0.0 refused); a valid emit is stamped and delivered with 2.0.0's defaults; an
 * invalid one is refused in strict mode before anything is written, naming the field.
 */
export async function runSchemaStep(tour: Tour): Promise<StepReport> {
  const report = new StepReport('tour 3 schema');
  const schemas = tour.producer.get(SchemaManager);
  const client = tour.producer.get(RedisStreamsClient);
  const partitioning = tour.producer.get(PartitioningManager);
  const accounts = tour.consumers[0].app.get(OpenedAccounts);

  tour.log(`Tour 3/5: schema registry for "${ACCOUNTS_OPENED}" (zod, strict validation)`);
  await schemas.registerSchema(ACCOUNTS_OPENED, accountOpenedV1, '1.0.0', 'backward');
  await schemas.registerSchema(ACCOUNTS_OPENED, accountOpenedV2, '2.0.0', 'backward');
  const versions = await schemas.listVersions(ACCOUNTS_OPENED);
  tour.log(`  registered versions: ${versions.join(', ')} (2.0.0 adds "plan" with default "free": backward compatible)`);

  const refused = await schemas.registerSchema(ACCOUNTS_OPENED, accountOpenedBreaking, '3.0.0', 'backward').then(
    () => undefined,
    (error: unknown) => error,
  );
  const breaking = refused instanceof SchemaRegistrationError ? refused.breakingChanges : [];
  tour.log(`  3.0.0 (accountId: number): ${refused ? errorText(refused) : 'registered (unexpected)'}`);
  report.row(
    'versions / incompatible v3',
    `${versions.join(', ')}; 3.0.0 refused: ${breaking.map((c) => `${c.rule} at ${c.path}`).join(', ') || 'no'}`,
    versions.join(',') === '1.0.0,2.0.0' && breaking.some((c) => c.path.includes('accountId')),
    'versions 1.0.0 and 2.0.0 were not both registered, or the incompatible 3.0.0 was not refused naming accountId',
  );

  // Valid payloads are stamped `accounts.opened@2.0.0`; the invalid one never reaches Redis.
  await lastValueFrom(client.emit(ACCOUNTS_OPENED, { accountId: 'acct-ada', email: 'ada@example.com', name: 'Ada' }));
  await lastValueFrom(client.emit(ACCOUNTS_OPENED, { accountId: 'acct-grace', email: 'grace@example.com', name: 'Grace', plan: 'pro' }));
  const invalid = await lastValueFrom(client.emit(ACCOUNTS_OPENED, { accountId: 'acct-eve', email: 'not-an-email', name: 'Eve' })).then(
    () => undefined,
    (error: unknown) => error,
  );
  const issues = invalid instanceof SchemaValidationError ? invalid.issues : [];
  if (invalid instanceof SchemaValidationError) {
    const listed = issues.map((i) => `${i.path} ${i.message.length > 60 ? `${i.message.slice(0, 57)}...` : i.message}`).join('; ');
    tour.log(`  emit of { email: 'not-an-email' }: ${invalid.name} (${invalid.code}, schema ${invalid.version}), nothing written: ${listed}`);
  } else {
    tour.log(`  emit of { email: 'not-an-email' }: ${invalid ? errorText(invalid) : 'accepted (unexpected)'}`);
  }
  const emailIssue = issues.find((i) => i.path.includes('email'));
  // Ajv reports the zod email rule twice (its regex and the format): the format reads better in a table.
  const shown = issues.find((i) => i.path.includes('email') && i.message.includes('format')) ?? issues[0];
  report.row(
    'invalid emit (strict)',
    invalid instanceof SchemaValidationError ? `refused, nothing written: ${invalid.name} ${shown ? `${shown.path} ${shown.message}` : ''}` : `not refused: ${String(invalid)}`,
    emailIssue !== undefined && invalid instanceof SchemaValidationError && invalid.message.includes(emailIssue.path),
    'the invalid payload was not refused with SchemaValidationError naming the email field',
  );

  const delivered = await waitUntil(async () => accounts.received.length >= 2 && (await isDrained(partitioning, ACCOUNTS_OPENED)), DELIVERY_TIMEOUT_MS);
  const stored = await storedEntries(partitioning, ACCOUNTS_OPENED);
  const received = accounts.received.map((a) => `${a.accountId} plan=${a.plan}`).join(', ');
  const metrics = schemas.getMetrics();
  tour.log(`  handler (reads 2.0.0) received: ${received || 'nothing'}; stored entries: ${stored}`);
  tour.log(`  schemaManager.getMetrics().emit: ${JSON.stringify(metrics.emit)}`);
  const plans = new Map(accounts.received.map((a) => [a.accountId, a.plan]));
  report.row(
    'delivered with v2 defaults',
    `${received}; ${stored} stored`,
    delivered && stored === 2 && accounts.received.length === 2 && plans.get('acct-ada') === 'free' && plans.get('acct-grace') === 'pro',
    'the valid accounts were not delivered once each with plan filled in (free by default), or the invalid one was stored',
  );
  return report;
}
