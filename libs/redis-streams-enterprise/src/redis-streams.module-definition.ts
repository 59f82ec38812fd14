import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RedisStreamsEnterpriseConfig } from './config/redis-streams.options.js';

/** Module-level switches that shape the provider graph (known at import time, unlike async options). */
export interface RedisStreamsModuleExtras {
  /** Register the module's providers globally. @default false */
  isGlobal: boolean;
}

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: REDIS_STREAMS_RAW_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisStreamsEnterpriseConfig>({ moduleName: 'RedisStreamsEnterprise' })
  .setClassMethodName('forRoot')
  .setExtras<RedisStreamsModuleExtras>({ isGlobal: false }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
