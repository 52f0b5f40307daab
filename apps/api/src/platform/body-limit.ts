import { RouteConfig } from '@nestjs/platform-fastify';

/** Route config flag read by the onRoute hook in http-hooks.ts. */
export const LARGE_BODY = 'largeBody';

/**
 * Lets a route take bodies up to ADMIN_BODY_LIMIT_BYTES instead of BODY_LIMIT_BYTES (model artifact uploads), so
 * that the limit stays small everywhere else.
 */
export const LargeBody = (): MethodDecorator => RouteConfig({ [LARGE_BODY]: true });
