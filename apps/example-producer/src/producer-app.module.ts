import { Module, type DynamicModule } from '@nestjs/common';
import { RedisStreamsEnterpriseModule, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { OrdersProducer } from './orders.producer.js';

/** A producer needs no HTTP server and no microservice: a Nest application context with the client is enough. */
@Module({})
export class ProducerAppModule {
  static forRoot(config: RedisStreamsEnterpriseConfig): DynamicModule {
    return {
      module: ProducerAppModule,
      imports: [RedisStreamsEnterpriseModule.forRoot(config)],
      providers: [OrdersProducer],
      exports: [OrdersProducer],
    };
  }
}
