import { createHash, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Inject, Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Who the rollout history names for calls made with ADMIN_TOKEN. */
export const ADMIN_ACTOR = 'admin';

const BEARER = /^Bearer[ ]+(\S+)\s*$/i;

/** `Authorization: Bearer <ADMIN_TOKEN>`, or 401 with a WWW-Authenticate challenge. */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.expected = digest(config.ADMIN_TOKEN);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const token = BEARER.exec(http.getRequest<FastifyRequest>().headers.authorization ?? '')?.[1];
    // Digests have equal lengths whatever was sent, so the comparison takes the same time and leaks no length either.
    if (token !== undefined && timingSafeEqual(digest(token), this.expected)) return true;
    http.getResponse<FastifyReply>().header('WWW-Authenticate', token === undefined ? 'Bearer realm="admin"' : 'Bearer realm="admin", error="invalid_token"');
    throw new UnauthorizedException(token === undefined ? 'missing bearer token' : 'invalid bearer token');
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
