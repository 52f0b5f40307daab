import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';

import { InvalidFieldsError } from '@app/common';

/**
 * A route that reads no body refuses one, as every other route refuses a key it does not read: `{"versionId": 5}`
 * sent to `POST /admin/models/rollback` rolled back to whatever version preceded production, and said nothing. An
 * empty object passes (a client that always sends JSON). Whether a handler reads its body is read from Nest's route
 * metadata once per handler. A global guard rather than an interceptor, which would put every request (scoring's
 * too) through rxjs: so it runs before the admin token guard, and a request with neither token nor a body it may
 * send gets this 400 rather than the 401.
 */
@Injectable()
export class NoBodyGuard implements CanActivate {
  private readonly readsBody = new WeakMap<object, boolean>();

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const body: unknown = context.switchToHttp().getRequest<{ body?: unknown }>().body;
    if (body === undefined || this.takesBody(context)) return true;
    if (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0)
      return true;
    throw new InvalidFieldsError([{ field: 'body', message: 'body must be empty: this route takes none' }]);
  }

  private takesBody(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    let reads = this.readsBody.get(handler);
    if (reads === undefined) {
      const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), handler.name) ?? {}) as object;
      // Keys are `${paramtype}:${index}`.
      reads = Object.keys(args).some((key) => Number(key.split(':')[0]) === RouteParamtypes.BODY);
      this.readsBody.set(handler, reads);
    }
    return reads;
  }
}
