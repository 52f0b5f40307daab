/**
 * Advisory lock every rollout transition takes first, in every process: two concurrent ones could otherwise both see
 * "no canary" and collide on the one-canary index; row locks cannot stop that, as the row to conflict with is not there
 * yet.
 */
export const ROLLOUT_LOCK_KEY = 0x6d6f6465;

/**
 * Advisory lock on the set of versions served: a transition that changes it takes it exclusively (after
 * ROLLOUT_LOCK_KEY), an event batch its shared side (EventRepository.insertNew), so that the change waits for the
 * batches under way and the batches after it feed the lists it serves. A transition that changes no version's role
 * (a policy, a precision) leaves the batches alone.
 */
export const SERVED_SET_LOCK_KEY = 0x73657276;
