import { LOG_LEVELS } from '@nestjs/common';
import { z } from 'zod';

/** Good enough for a laptop or a test run; production must bring its own, or anyone could call the admin API. */
const DEV_ADMIN_TOKEN = 'change-me';

// Listed here rather than imported from @app/mmoe so that neither building nor reading the config pulls in
// TensorFlow.js; the worker's initBackend(config.MMOE_BACKEND) call stops compiling if a name here is unknown there.
const MMOE_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;

const appConfigSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    API_HOST: z.string().default('0.0.0.0'),
    API_PORT: z.coerce.number().int().min(1).max(65535).default(3000),
    DATABASE_URL: z
      .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' })
      .default('postgres://postgres@127.0.0.1:5432/postgres'),
    REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// URL' }).default('redis://127.0.0.1:6379'),
    MMOE_BACKEND: z.enum(MMOE_BACKENDS).optional(),
    ADMIN_TOKEN: z.string().optional(),
    LOG_LEVEL: z.enum(LOG_LEVELS).default('log'),
  })
  .refine((env) => env.NODE_ENV !== 'production' || (env.ADMIN_TOKEN !== undefined && env.ADMIN_TOKEN !== DEV_ADMIN_TOKEN), {
    path: ['ADMIN_TOKEN'],
    message: 'must be set to a real secret when NODE_ENV=production',
    // Zod skips object-level checks once a field has failed; run this one anyway so the boot error lists every problem.
    when: () => true,
  })
  .transform(({ ADMIN_TOKEN = DEV_ADMIN_TOKEN, ...env }) => ({ ...env, ADMIN_TOKEN }));

export type AppConfig = Readonly<z.output<typeof appConfigSchema>>;

/**
 * Validates the whole environment once, at boot, so a typo fails the start with every bad variable named
 * instead of surfacing later as a refused connection. Values are never echoed: some of them are secrets.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  // Compose and CI templates pass unset variables as empty strings; those mean "use the default", not "invalid".
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = appConfigSchema.safeParse(given);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  - ${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`Invalid environment configuration:\n${problems.join('\n')}`);
  }
  return Object.freeze(parsed.data);
}
