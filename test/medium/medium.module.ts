import type { ModuleMetadata } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';

import { APP_CONFIG, ConfigModule, loadConfig } from '@app/config';

/**
 * The medium tier (after immich's test/medium): a spec builds only the modules it exercises, on the real Postgres and
 * Redis of test-env.ts, and calls them directly, with no HTTP in between. Lifecycle hooks run as in the apps.
 */
export async function createMediumModule(
  metadata: ModuleMetadata,
  env: Record<string, string> = {},
): Promise<TestingModule> {
  return (await compileMediumModule(metadata, env)).init();
}

/** The module compiled but not started (its boot hooks run at init()); `env` overrides the test environment. */
export function compileMediumModule(
  metadata: ModuleMetadata,
  env: Record<string, string> = {},
): Promise<TestingModule> {
  return Test.createTestingModule({
    ...metadata,
    imports: [ConfigModule, ...(metadata.imports ?? [])],
  })
    .overrideProvider(APP_CONFIG)
    .useValue(loadConfig({ ...process.env, ...env }))
    .setLogger(false as never)
    .compile();
}

/** A prefix unique to one run of one spec: the rows and keys it makes are its own, and it removes only those. */
export function runToken(spec: string): string {
  return `${spec}-${process.pid}-${Date.now().toString(36)}`;
}
