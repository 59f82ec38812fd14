import { Controller, Get, Header, Inject, Module, type DynamicModule, type INestApplication, type Provider, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Registry } from 'prom-client';
import { RedisStreamsEnterpriseModule, RedisStreamsExceptionFilter, RedisStreamsServer, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { parsePrometheus, type PromSample } from './prometheus.js';

const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

/** The `/metrics` endpoint an app already has: it serves its prom-client registry. */
@Controller()
class MetricsController {
  constructor(@Inject(METRICS_REGISTRY) private readonly registry: Registry) {}

  @Get('metrics')
  @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

@Module({})
class MeteredAppModule {
  static forRoot(config: RedisStreamsEnterpriseConfig, registry: Registry, controllers: Type[], providers: Provider[]): DynamicModule {
    return {
      module: MeteredAppModule,
      imports: [RedisStreamsEnterpriseModule.forRoot(config)],
      controllers: [...controllers, MetricsController],
      providers: [...providers, { provide: METRICS_REGISTRY, useValue: registry }],
    };
  }
}

/**
 * A real hybrid Nest app: HTTP on a free loopback port with `GET /metrics` serving `registry`, and the Redis Streams
 * server of the module connected as its microservice. Close it with `app.close()`.
 */
export async function startMeteredHttpApp(
  config: RedisStreamsEnterpriseConfig,
  registry: Registry,
  controllers: Type[],
  providers: Provider[] = [],
): Promise<{ app: INestApplication; metricsUrl: string }> {
  const app = await NestFactory.create(MeteredAppModule.forRoot(config, registry, controllers, providers), { logger: false });
  app.connectMicroservice({ strategy: app.get(RedisStreamsServer) });
  app.useGlobalFilters(new RedisStreamsExceptionFilter());
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  return { app, metricsUrl: `http://127.0.0.1:${address.port}/metrics` };
}

/** GET `url` over HTTP and parse the Prometheus text it answers. */
export async function scrape(url: string): Promise<PromSample[]> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}`);
  if (!response.headers.get('content-type')?.startsWith('text/plain')) throw new Error(`GET ${url} is not Prometheus text`);
  return parsePrometheus(await response.text());
}
