import { z } from 'zod';

import { InvalidFieldsError } from '@app/common';

import { parseJobData } from './job-data';

describe('parseJobData', () => {
  const schema = z.strictObject({ source: z.strictObject({ kind: z.literal('csv'), path: z.string() }) });

  it('returns the data that matches', () => {
    expect(parseJobData(schema, { source: { kind: 'csv', path: '/a.csv' } })).toEqual({
      source: { kind: 'csv', path: '/a.csv' },
    });
  });

  it.each([
    [{}, [{ field: 'source', message: expect.stringMatching(/^source: /) }]],
    [{ source: { kind: 'csv' } }, [{ field: 'source.path', message: expect.stringMatching(/^source\.path: /) }]],
    [
      { source: { kind: 'csv', path: '/a', mode: 1 }, junk: 2 },
      [
        { field: 'source.mode', message: 'source.mode is not a field of this job' },
        { field: 'junk', message: 'junk is not a field of this job' },
      ],
    ],
    [null, [{ field: 'data', message: expect.stringMatching(/^data: /) }]],
  ])('names every bad field of %j', (data, errors) => {
    const error = (() => {
      try {
        parseJobData(schema, data);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidFieldsError);
    expect((error as InvalidFieldsError).errors).toEqual(expect.arrayContaining(errors));
    expect((error as InvalidFieldsError).errors).toHaveLength(errors.length);
  });
});
