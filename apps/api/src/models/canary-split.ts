/**
 * The user's bucket in 0..99: FNV-1a (32 bit) of the UTF-8 id, modulo 100. Stable across requests, processes and
 * restarts, so a user stays on the same side of a canary split, and raising the percent only moves users onto the canary.
 */
export function canaryBucket(userId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(userId, 'utf8')) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash % 100;
}
