import { Module, type DynamicModule } from '@nestjs/common';
import { RedisStreamsEnterpriseModule, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { InvoicesController } from './dead-letters.step.js';
import { PaymentsController } from './exactly-once.step.js';
import { AccountsController } from './ordering.step.js';
import { SignupsController } from './schema.step.js';

/**
 * The tour's service. `consumer(config, shared)` is a microservice with the handlers of every step; `shared` are
 * objects both consumers see through DI (what the handlers record, the "fix" of step 5), provided by their class, so
 * nothing lives in module state. `producer(config)` is the client and the managers alone.
 */
@Module({})
export class TourModule {
  static consumer(config: RedisStreamsEnterpriseConfig, shared: readonly object[]): DynamicModule {
    return {
      module: TourModule,
      imports: [RedisStreamsEnterpriseModule.forRoot(config)],
      controllers: [AccountsController, PaymentsController, SignupsController, InvoicesController],
      providers: shared.map((value) => ({ provide: value.constructor, useValue: value })),
    };
  }

  static producer(config: RedisStreamsEnterpriseConfig): DynamicModule {
    return { module: TourModule, imports: [RedisStreamsEnterpriseModule.forRoot(config)] };
  }
}
