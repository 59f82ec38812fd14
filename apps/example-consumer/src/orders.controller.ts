import { Controller, Logger, UseFilters } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { RedisStreamsContext, RedisStreamsExceptionFilter, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { BillingLedger } from './billing-ledger.service.js';
import { OrderCreatedDto } from './dto/order-created.dto.js';
import { QuoteRequestDto } from './dto/quote-request.dto.js';
import { SumRequestDto } from './dto/sum-request.dto.js';
import { payloadValidationPipe } from './dto/validation.pipe.js';
import {
  BILLING_STATS,
  ORDERS_CREATED,
  ORDERS_QUOTE,
  ORDERS_SUM,
  computeQuote,
  type BillingStats,
  type Quote,
  type SumReply,
} from './orders.contracts.js';

/**
 * Handlers of the billing service. Events are acknowledged once the handler returns (or its Promise resolves); a
 * handler that throws gets the message again after a backoff, and after `retry.attempts` it is dead-lettered.
 *
 * Note `@EventPattern<string>(...)`: on Nest 12 the untyped form `@EventPattern('x')` picks a new typed overload
 * that rejects a typed `@Ctx()` parameter (TS1241); the explicit `<string>` also compiles on Nest 11.
 */
// On the controller rather than global: in the hybrid app (main.ts) a global filter would also take the HTTP routes.
// It keeps handler errors unchanged for the transport, so dead-letter records name the real error (callers of send()
// still get only RpcException payloads or "Internal server error").
@UseFilters(new RedisStreamsExceptionFilter())
@Controller()
export class OrdersController {
  private readonly logger = new Logger(OrdersController.name);

  constructor(
    private readonly ledger: BillingLedger,
    private readonly server: RedisStreamsServer,
  ) {}

  @EventPattern<string>(ORDERS_CREATED)
  onOrderCreated(@Payload(payloadValidationPipe()) order: OrderCreatedDto, @Ctx() ctx: RedisStreamsContext): void {
    const deliveryCount = ctx.getDeliveryCount();
    const isNew = this.ledger.bill(order, deliveryCount);
    if (deliveryCount > 1 || !isNew) {
      this.logger.warn(
        `Order ${order.orderId} delivered again (delivery ${deliveryCount}, ${isNew ? 'first time billed' : 'already billed, skipped'}) ` +
          `stream=${ctx.getStream()} id=${ctx.getEntryId()}`,
      );
    } else {
      this.logger.debug?.(`Billed order ${order.orderId} stream=${ctx.getStream()} id=${ctx.getEntryId()}`);
    }
  }

  @MessagePattern(ORDERS_QUOTE)
  quote(@Payload(payloadValidationPipe()) request: QuoteRequestDto): Quote {
    this.ledger.quoteAnswered();
    return computeQuote(request);
  }

  @MessagePattern(ORDERS_SUM)
  sum(@Payload(payloadValidationPipe()) { amounts }: SumRequestDto): SumReply {
    this.ledger.sumAnswered();
    const cents = amounts.reduce((total, amount) => total + Math.round(amount * 100), 0);
    return { count: amounts.length, total: cents / 100 };
  }

  @MessagePattern(BILLING_STATS)
  stats(): BillingStats {
    const metrics = this.server.getMetrics();
    const { p50, p99, max } = metrics.handlerLatencyMs;
    return {
      consumer: this.server.config.consumer.consumerName,
      pid: process.pid,
      ...this.ledger.snapshot(),
      transport: {
        received: metrics.received,
        acked: metrics.acked,
        failed: metrics.failed,
        retried: metrics.retried,
        deadLettered: metrics.deadLettered,
        reclaimed: metrics.reclaimed,
        handlerLatencyMs: { p50, p99, max },
      },
    };
  }
}
