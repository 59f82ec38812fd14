import { Module, type DynamicModule } from '@nestjs/common';
import { RedisStreamsEnterpriseModule, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { BillingLedger } from './billing-ledger.service.js';
import { OrdersController } from './orders.controller.js';

/**
 * The billing microservice. `forRoot(config)` takes the transport configuration so the same module runs from
 * `main.ts` (config from the environment), inside the demo or inside a test.
 */
@Module({})
export class ConsumerAppModule {
  static forRoot(config: RedisStreamsEnterpriseConfig): DynamicModule {
    return {
      module: ConsumerAppModule,
      imports: [RedisStreamsEnterpriseModule.forRoot(config)],
      controllers: [OrdersController],
      providers: [BillingLedger],
    };
  }
}
