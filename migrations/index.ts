import { InitialSchema1763790000000 } from './1763790000000-initial-schema';
import { VersionFusion1764600000000 } from './1764600000000-version-fusion';

/** Every migration, in order; imported (not globbed) so that the compiled apps carry them. */
export const MIGRATIONS = [InitialSchema1763790000000, VersionFusion1764600000000];
