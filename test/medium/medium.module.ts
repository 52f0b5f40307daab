import type { ModuleMetadata } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';

import { ConfigModule } from '@app/config';

/**
 * The medium tier (after immich's test/medium): a spec builds only the modules it exercises, on the real Postgres and
 * Redis of test-env.ts, and calls them directly, with no HTTP in between. Lifecycle hooks run as in the apps.
 */
export async function createMediumModule(metadata: ModuleMetadata): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    ...metadata,
    imports: [ConfigModule, ...(metadata.imports ?? [])],
  })
    .setLogger(false as never)
    .compile();
  return moduleRef.init();
}

/** A prefix unique to one run of one spec: the rows and keys it makes are its own, and it removes only those. */
export function runToken(spec: string): string {
  return `${spec}-${process.pid}-${Date.now().toString(36)}`;
}
