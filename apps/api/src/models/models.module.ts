import { Module } from '@nestjs/common';

import { RegistryModule } from '@app/registry';

import { ProductionSpecSource } from '../events/production-spec.source';
import { PlatformModule } from '../platform/platform.module';
import { ModelLifecycleService } from './model-lifecycle.service';
import { ScorerLoader } from './scorer.loader';

/** This process's serving models, and the registry they follow. */
@Module({
  imports: [RegistryModule, PlatformModule],
  providers: [
    ModelLifecycleService,
    ScorerLoader,
    {
      provide: ProductionSpecSource,
      inject: [ModelLifecycleService],
      useFactory: (lifecycle: ModelLifecycleService): ProductionSpecSource => ({
        current: () => lifecycle.current().production?.spec,
        served: () => {
          const { production, canary, shadow } = lifecycle.current();
          return [production, canary, shadow].flatMap((model) =>
            model ? [{ id: model.versionId, spec: model.spec }] : [],
          );
        },
        onChange: (listener) => lifecycle.onServingChange(listener),
      }),
    },
  ],
  exports: [ModelLifecycleService, RegistryModule, ProductionSpecSource],
})
export class ModelsModule {}
