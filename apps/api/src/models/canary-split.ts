import { fnv1a32 } from '@app/mmoe/serving';

/**
 * The user's bucket in 0..99: FNV-1a (32 bit) of the UTF-8 id, modulo 100. Stable across requests, processes and
 * restarts, so a user stays on the same side of a canary split, and raising the percent only moves users onto the canary.
 */
export function canaryBucket(userId: string): number {
  return fnv1a32(userId, 'utf8') % 100;
}
