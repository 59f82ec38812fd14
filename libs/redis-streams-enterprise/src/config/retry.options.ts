import 'reflect-metadata';
import { IsBoolean, IsIn, IsInt, IsNumber, Max, Min, ValidateNested } from 'class-validator';
import { Type } from 'class-transformer';

/** Delay between delivery attempts. */
export class BackoffOptions {
  /**
   * `exponential`: delayMs * 2^(attempt-1), capped at maxDelayMs; `fixed`: always delayMs.
   * @default 'exponential'
   */
  @IsIn(['exponential', 'fixed'])
  type: 'exponential' | 'fixed' = 'exponential';

  /**
   * Base delay before the second attempt.
   * @default 1000
   */
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  delayMs = 1_000;

  /**
   * Upper bound of one delay.
   * @default 60000
   */
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  maxDelayMs = 60_000;

  /**
   * Random spread applied to each delay, as a fraction: 0.2 means +-20 %. Spreads retries of many failed
   * messages so they do not hit a recovering dependency at once.
   * @default 0.2
   */
  @IsNumber()
  @Min(0)
  @Max(1)
  jitter = 0.2;
}

/** What happens when an event handler fails. */
export class RetryOptions {
  /**
   * Deliveries allowed per message, the first included, counted by Redis across consumers and restarts.
   * After the last failed one the message is dead-lettered. `1` means no retry.
   * @default 3
   */
  @IsInt()
  @Min(1)
  @Max(1_000)
  attempts = 3;

  /** Delay between attempts. */
  @ValidateNested()
  @Type(() => BackoffOptions)
  backoff: BackoffOptions = new BackoffOptions();
}

/** Where messages go that cannot be processed. */
export class DeadLetterOptions {
  /**
   * Park failed and undecodable messages in `<prefix>:{<pattern>}:dlq`. When disabled, such messages are
   * acknowledged and dropped with an error log (not recommended for anything that matters).
   * @default true
   */
  @IsBoolean()
  enabled = true;

  /**
   * Approximate cap on entries per dead-letter stream.
   * @default 100000
   */
  @IsInt()
  @Min(100)
  maxLen = 100_000;
}
