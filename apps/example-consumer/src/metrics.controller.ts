import { Controller, Get, Header } from '@nestjs/common';
import { register } from 'prom-client';

/** The path Prometheus scrapes (deploy/grafana/redis-streams.json is built on what it serves). */
export const METRICS_PATH = '/metrics';

/**
 * Prometheus scrape endpoint: prom-client's default registry, where the transport registers its metrics
 * (`observability.metrics.prometheus`, consumer.config.ts) next to anything else the app registers.
 */
@Controller()
export class MetricsController {
  @Get(METRICS_PATH.slice(1))
  @Header('Content-Type', register.contentType)
  metrics(): Promise<string> {
    return register.metrics();
  }
}
