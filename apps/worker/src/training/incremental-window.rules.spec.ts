import { incrementalPlan, replayCount } from './incremental-window.rules';

const day = (d: number) => new Date(Date.UTC(2025, 1, 1) + d * 86_400_000).toISOString();

describe('incrementalPlan', () => {
  it("replays the lineage's older events, back to its start, up to the window", () => {
    expect(incrementalPlan({ from: day(4.5), historyFrom: day(0) }, day(7), 0.2, 30)).toEqual({
      window: { from: day(4.5), to: day(7) },
      replay: { from: day(0), to: day(4.5), share: 0.2 },
    });
  });

  it('reaches back at most replayDays before the window', () => {
    expect(incrementalPlan({ from: day(40), historyFrom: day(0) }, day(41), 0.5, 7).replay).toEqual({
      from: day(33),
      to: day(40),
      share: 0.5,
    });
  });

  it('replays nothing without a share, or without older events', () => {
    expect(incrementalPlan({ from: day(4), historyFrom: day(0) }, day(5), 0, 30)).toEqual({
      window: { from: day(4), to: day(5) },
    });
    expect(incrementalPlan({ from: day(4), historyFrom: day(4) }, day(5), 0.2, 30).replay).toBeUndefined();
  });

  it("takes the lineage's events its parent's snapshot did not see, before the window: late ones, trained once", () => {
    const seen = '900:905:901';
    expect(incrementalPlan({ from: day(4.5), historyFrom: day(0), seen }, day(7), 0.2, 30)).toEqual({
      window: { from: day(4.5), to: day(7) },
      late: { from: day(0), to: day(4.5), after: seen },
      replay: { from: day(0), to: day(4.5), share: 0.2, seen },
    });
    // Late events before the lineage's start are no more its than its full retrain's window held them.
    expect(incrementalPlan({ from: day(40), historyFrom: day(0), seen }, day(41), 0, 30).late).toEqual({
      from: day(0),
      to: day(40),
      after: seen,
    });
  });

  it('knows of no late event for a parent that recorded no snapshot', () => {
    const plan = incrementalPlan({ from: day(4.5), historyFrom: day(0) }, day(7), 0.2, 30);
    expect(plan.late).toBeUndefined();
    expect(plan.replay).toEqual({ from: day(0), to: day(4.5), share: 0.2 });
  });

  it('refuses a share outside [0, 1], naming it', () => {
    expect(() => incrementalPlan({ from: day(4), historyFrom: day(0) }, day(5), 1.5, 30)).toThrow(
      expect.objectContaining({ name: 'TrainingInputError', message: 'source.replay must be in [0, 1], got 1.5' }),
    );
  });

  it('replays a share of the training rows', () => {
    expect(replayCount(0.2, 1001)).toBe(200);
  });
});
