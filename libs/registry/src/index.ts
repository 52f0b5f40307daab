export * from './model-change.repository';
export * from './model-registry.service';
export * from './model-version.reader';
export * from './registry.module';
export * from './rollout.rules';
export * from './fusion.rules';
export * from './rollout-policy.rules';
export * from './version-metrics';
