/** Most candidates one score request may rank: the DTO's rule and schema, and its fast check, read it from here. */
export const MAX_CANDIDATES = 1000;
