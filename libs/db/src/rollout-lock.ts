/**
 * Advisory lock every rollout transition takes first, in every process: two concurrent ones could otherwise both see
 * "no canary" and collide on the one-canary index; row locks cannot stop that, as the row to conflict with is not there
 * yet. An event batch that feeds lists takes its shared side (EventRepository.insertNew): a change of the versions
 * served waits for the batches under way, and the batches after it feed the lists it serves.
 */
export const ROLLOUT_LOCK_KEY = 0x6d6f6465;
