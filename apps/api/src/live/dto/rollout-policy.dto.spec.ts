import { InvalidFieldsError } from '@app/common';

import { createValidationPipe } from '../../platform/validation';
import { RolloutPolicyDto, toRolloutPolicy } from './rollout-policy.dto';

const pipe = createValidationPipe();
const validate = (body: unknown) => pipe.transform(body, { type: 'body', metatype: RolloutPolicyDto });

/** The fields a refused body's 400 names, each once. */
async function refusedFields(body: unknown): Promise<string[]> {
  const error: unknown = await validate(body).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof InvalidFieldsError)) throw new Error(`expected a 400 for ${JSON.stringify(body)}`);
  return [...new Set(error.errors.map((e) => e.field))];
}

describe('RolloutPolicyDto', () => {
  it('fills the defaults and hands the registry a plain policy', async () => {
    expect(toRolloutPolicy((await validate({})) as RolloutPolicyDto)).toEqual({
      confidence: 0.95,
      minEvents: 1000,
      minUsers: 100,
      tolerance: 0.01,
      maxHours: 168,
    });
    const policy = toRolloutPolicy(
      (await validate({ minEvents: 300, tasks: { click: { minEvents: 5 }, like: {} } })) as RolloutPolicyDto,
    );
    expect(JSON.parse(JSON.stringify(policy))).toEqual({
      confidence: 0.95,
      minEvents: 300,
      minUsers: 100,
      tolerance: 0.01,
      maxHours: 168,
      tasks: { click: { minEvents: 5 }, like: {} },
    });
    const guarded = toRolloutPolicy(
      (await validate({ maxEvents: 5000, guardrails: { calibration: 0.2, latencyP99Ms: 50 } })) as RolloutPolicyDto,
    );
    expect(JSON.parse(JSON.stringify(guarded))).toMatchObject({
      maxEvents: 5000,
      guardrails: { calibration: 0.2, latencyP99Ms: 50 },
    });
  });

  it('refuses unknown keys at every level, naming their path', async () => {
    expect(await refusedFields({ junk: 1 })).toEqual(['junk']);
    expect(await refusedFields({ tasks: { click: { minEvents: 5, junk: 'x'.repeat(900_000) } } })).toEqual([
      'tasks.click.junk',
    ]);
  });

  it('reads numbers only from JSON numbers, within bounds', async () => {
    expect(await refusedFields({ minEvents: '0x10' })).toEqual(['minEvents']);
    expect(await refusedFields({ minEvents: true })).toEqual(['minEvents']);
    expect(await refusedFields({ minEvents: 1.5 })).toEqual(['minEvents']);
    expect(await refusedFields({ confidence: '0.9' })).toEqual(['confidence']);
    expect(await refusedFields({ tolerance: 0.6 })).toEqual(['tolerance']);
    expect(await refusedFields({ tasks: { click: { minEvents: 0, tolerance: 2 } } })).toEqual([
      'tasks.click.minEvents',
      'tasks.click.tolerance',
    ]);
    expect(await refusedFields({ tasks: { click: { minEvents: '5' } } })).toEqual(['tasks.click.minEvents']);
  });

  it('checks the test’s bounds and the guardrails like the rest', async () => {
    expect(await refusedFields({ minUsers: '50' })).toEqual(['minUsers']);
    expect(await refusedFields({ minUsers: 1 })).toEqual(['minUsers']);
    expect(await refusedFields({ maxHours: 0 })).toEqual(['maxHours']);
    expect(await refusedFields({ maxEvents: 2.5 })).toEqual(['maxEvents']);
    expect((await refusedFields({ guardrails: { errorRate: 0.9, junk: 1 } })).sort()).toEqual([
      'guardrails.errorRate',
      'guardrails.junk',
    ]);
    expect(await refusedFields({ guardrails: { latencyP99Ms: 10_000 } })).toEqual(['guardrails.latencyP99Ms']);
    expect(await refusedFields({ guardrails: [{ calibration: 0.1 }] })).toContain('guardrails');
    expect(await refusedFields({ guardrails: 5 })).toContain('guardrails');
  });

  it('refuses null for any field, rather than storing it (maxEvents: null once ended every test at once)', async () => {
    expect(await refusedFields({ maxEvents: null })).toEqual(['maxEvents']);
    expect(await refusedFields({ confidence: null, minUsers: null })).toEqual(['confidence', 'minUsers']);
    expect(await refusedFields({ tasks: null })).toEqual(['tasks']);
    expect(await refusedFields({ guardrails: null })).toEqual(['guardrails']);
    expect(await refusedFields({ tasks: { click: { minEvents: null } } })).toEqual(['tasks.click.minEvents']);
    expect(await refusedFields({ guardrails: { calibration: null } })).toEqual(['guardrails.calibration']);
  });

  it('keeps every task named, whatever its name, and refuses an empty tasks (it would gate on nothing)', async () => {
    expect(await refusedFields({ tasks: {} })).toEqual(['tasks']);
    // Keys that name a Map method were dropped by class-transformer's Map conversion, leaving tasks: {}.
    for (const name of ['size', 'get', 'set']) {
      const policy = toRolloutPolicy((await validate({ tasks: { [name]: { minEvents: 3 } } })) as RolloutPolicyDto);
      expect(JSON.parse(JSON.stringify(policy.tasks))).toEqual({ [name]: { minEvents: 3 } });
    }
    // Those of a plain object's are no task's (a spec refuses them), and were dropped as well: refused, named.
    for (const name of ['constructor', 'toString', 'hasOwnProperty'])
      expect(await refusedFields({ tasks: { [name]: { minEvents: 3 } } })).toEqual([`tasks.${name}`]);
  });

  it('wants tasks as an object of objects', async () => {
    expect(await refusedFields({ tasks: [{}] })).toEqual(['tasks']);
    expect(await refusedFields({ tasks: 5 })).toContain('tasks');
    expect(await refusedFields({ tasks: { click: 5 } })).toContain('tasks.click');
  });
});
