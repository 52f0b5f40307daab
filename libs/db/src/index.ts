export * from './data-source.options';
export * from './database.module';
export * from './entities/entity-features.entity';
export * from './entities/event.entity';
export * from './entities/model-version.entity';
export * from './entities/rollout-event.entity';
