import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RedisStreamsEnterpriseModule, RedisStreamsHealthIndicator, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { BillingLedger } from './billing-ledger.service.js';
import { HealthController } from './health.controller.js';
import { MetricsController } from './metrics.controller.js';
import { OrdersController } from './orders.controller.js';

/**
 * The billing microservice. `forRoot(config)` takes the transport configuration so the same module runs from
 * `main.ts` (config from the environment), inside the demo or inside a test. main.ts runs it as a hybrid app, so the
 * health controller answers over HTTP.
 */
@Module({})
export class ConsumerAppModule {
  static forRoot(config: RedisStreamsEnterpriseConfig): DynamicModule {
    return {
      module: ConsumerAppModule,
      imports: [RedisStreamsEnterpriseModule.forRoot(config), TerminusModule],
      controllers: [OrdersController, HealthController, MetricsController],
      providers: [BillingLedger, RedisStreamsHealthIndicator],
    };
  }
}
