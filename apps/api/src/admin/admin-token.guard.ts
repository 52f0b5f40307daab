import { timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { sha256Hex } from '@app/mmoe/serving';

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
    const token = bearerToken(http.getRequest<FastifyRequest>().headers.authorization);
    if (this.accepts(token)) return true;
    http
      .getResponse<FastifyReply>()
      .header(
        'WWW-Authenticate',
        token === undefined ? 'Bearer realm="admin"' : 'Bearer realm="admin", error="invalid_token"',
      );
    throw new UnauthorizedException(token === undefined ? 'missing bearer token' : 'invalid bearer token');
  }

  /** Whether `token` is ADMIN_TOKEN; also the check of the admin routes no Nest guard reaches (the Bull Board). */
  accepts(token: string | undefined): boolean {
    // Digests have equal lengths whatever was sent, so the comparison takes the same time and leaks no length either.
    return token !== undefined && timingSafeEqual(digest(token), this.expected);
  }
}

/** The token of an `Authorization: Bearer <token>` header, if that is what the header holds. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return BEARER.exec(authorization ?? '')?.[1];
}

function digest(token: string): Buffer {
  return Buffer.from(sha256Hex(token), 'hex');
}
