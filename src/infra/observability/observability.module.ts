import { Module } from '@nestjs/common';
import { HealthController } from './health.controller';
import { MetricsController, MetricsTokenGuard } from './metrics.controller';
import { MetricsSources } from './metrics-sources';

/** Root-level operations endpoints (outside /api/v1): health and Prometheus metrics. */
@Module({
  controllers: [HealthController, MetricsController],
  providers: [MetricsTokenGuard, MetricsSources],
})
export class ObservabilityModule {}
