import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { consumerConfigFromEnv, httpPortFromEnv } from './consumer.config.js';
import { ConsumerAppModule } from './consumer-app.module.js';
import { logLevelsFromEnv } from './log-levels.js';
import { redactUrl } from './redact-url.js';

/** Printed once the consumer reads from Redis; scripts may wait for this line. */
const READY_LINE = 'example-consumer ready';

async function bootstrap(): Promise<void> {
  const logger = new Logger('ExampleConsumer');
  const config = consumerConfigFromEnv();
  // A hybrid app: HTTP for the health probes (and metrics), the Redis Streams server for the messages. The server is
  // a provider of RedisStreamsEnterpriseModule; Nest hands it over as the transport strategy.
  const app = await NestFactory.create(ConsumerAppModule.forRoot(config), { logger: logLevelsFromEnv() });
  // OrdersController carries RedisStreamsExceptionFilter (a global one would also take the HTTP routes).
  app.connectMicroservice({ strategy: app.get(RedisStreamsServer) });
  // SIGTERM/SIGINT: stop reading, finish in-flight handlers, flush acks, close connections, then exit 0.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  try {
    await app.startAllMicroservices();
    await app.listen(httpPortFromEnv());
  } catch (error) {
    await app.close().catch(() => undefined); // best effort: the start error below is what matters
    throw error;
  }
  logger.log(
    `${READY_LINE}: redis=${redactUrl(config.connection?.url)} group=${config.consumer?.group} ` +
      `prefix=${config.streams?.keyPrefix} pid=${process.pid} http=${String(app.getHttpServer().address()?.port)}`,
  );
}

bootstrap().catch((error: unknown) => {
  new Logger('ExampleConsumer').error(
    `Could not start: ${error instanceof Error ? error.message : String(error)}`,
    error instanceof Error ? error.stack : undefined,
  );
  process.exitCode = 1;
});
