import type { z } from 'zod';

import { InvalidFieldsError } from '@app/common';

/**
 * A job's data checked against its queue contract when a consumer takes it: whoever produced it (the API, Bull Board,
 * another client writing to the queue), data that does not match fails with every bad field named (`data` for the
 * whole), rather than somewhere deep in the work.
 */
export function parseJobData<Data>(schema: z.ZodType<Data>, data: unknown): Data {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  throw new InvalidFieldsError(
    parsed.error.issues.flatMap((issue) => {
      const path = issue.path.map(String);
      // An unknown key is named itself, not the object holding it.
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => {
          const field = [...path, key].join('.');
          return { field, message: `${field} is not a field of this job` };
        });
      }
      const field = path.length === 0 ? 'data' : path.join('.');
      return [{ field, message: `${field}: ${issue.message}` }];
    }),
  );
}
