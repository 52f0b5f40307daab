import type { TrainingJobProgress } from '@app/queue';

import { JobProgressThrottle } from './job-progress.throttle';

describe('JobProgressThrottle', () => {
  let now = 0;
  let reports: TrainingJobProgress[];
  let throttle: JobProgressThrottle;
  const step = (epoch: number, stepNo: number) => ({
    epoch,
    epochs: 2,
    step: stepNo,
    steps: 10,
    loss: 0.5,
    examplesPerSec: 1234.4,
  });

  beforeEach(() => {
    now = 0;
    reports = [];
    throttle = new JobProgressThrottle(
      (p) => reports.push(p),
      500,
      () => now,
    );
  });

  it('reports each phase at once', () => {
    throttle.phase('dataset');
    throttle.phase('training');
    expect(reports).toEqual([{ phase: 'dataset' }, { phase: 'training' }]);
  });

  it('reports training at most once per interval, with the ETA from the pace since training started', () => {
    throttle.phase('training');
    throttle.training(step(1, 1)); // t=0: same instant as the phase report
    now = 400;
    throttle.training(step(1, 5)); // too soon
    now = 600;
    throttle.training(step(1, 7)); // 6 steps in 0.6 s → 13 steps left ≈ 1.3 s
    now = 700;
    throttle.training(step(1, 8));
    expect(reports).toEqual([
      { phase: 'training' },
      { phase: 'training', epoch: 1, epochs: 2, step: 7, steps: 10, loss: 0.5, examplesPerSec: 1234, etaSeconds: 1 },
    ]);
  });

  it('leaves the ETA out until the pace is measured', () => {
    now = 1000;
    throttle.training(step(2, 3));
    expect(reports).toEqual([expect.not.objectContaining({ etaSeconds: expect.anything() })]);
  });
});
