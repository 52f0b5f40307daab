import { InitialSchema1763790000000 } from './1763790000000-initial-schema';

/** Every migration, in order; imported (not globbed) so that the compiled apps carry them. */
export const MIGRATIONS = [InitialSchema1763790000000];
