import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';

import { InvalidFieldsError } from '@app/common';

/**
 * A route that reads no body refuses one, and a route that changes something and reads no query refuses a query, as
 * every route refuses a key it does not read: `{"versionId": 5}` sent to `POST /admin/models/rollback` rolled back to
 * whatever version preceded production, and `POST /admin/models/promote?versionId=14` promoted the canary whatever it
 * was, each saying nothing. An empty body object passes (a client that always sends JSON); a read (GET, HEAD) ignores
 * a query it does not read, which changes nothing. What a handler reads is read from Nest's route metadata once per
 * handler. A global guard rather than an interceptor, which would put every request (scoring's too) through rxjs: so
 * it runs before the admin token guard, and a request with neither token nor input it may send gets this 400 rather
 * than the 401.
 */
@Injectable()
export class UnreadInputGuard implements CanActivate {
  private readonly reads = new WeakMap<object, { body: boolean; query: boolean }>();

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const { body, query, method } = context
      .switchToHttp()
      .getRequest<{ body?: unknown; query?: Record<string, unknown>; method: string }>();
    const reads = this.readsOf(context);
    if (body !== undefined && !reads.body && !isEmptyObject(body))
      throw new InvalidFieldsError([{ field: 'body', message: 'body must be empty: this route takes none' }]);
    if (!reads.query && method !== 'GET' && method !== 'HEAD' && query !== undefined) {
      const keys = Object.keys(query);
      if (keys.length > 0)
        throw new InvalidFieldsError(
          keys.map((key) => ({ field: key, message: `${key} is not a query parameter: this route takes none` })),
        );
    }
    return true;
  }

  private readsOf(context: ExecutionContext): { body: boolean; query: boolean } {
    const handler = context.getHandler();
    let reads = this.reads.get(handler);
    if (reads === undefined) {
      const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), handler.name) ?? {}) as object;
      // Keys are `${paramtype}:${index}`.
      const types = new Set(Object.keys(args).map((key) => Number(key.split(':')[0])));
      reads = { body: types.has(RouteParamtypes.BODY), query: types.has(RouteParamtypes.QUERY) };
      this.reads.set(handler, reads);
    }
    return reads;
  }
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}
