export { ProducerAppModule } from './producer-app.module.js';
export { OrdersProducer } from './orders.producer.js';
export { producerConfigFromEnv } from './producer.config.js';
export { runWithConcurrency } from './concurrency.js';
