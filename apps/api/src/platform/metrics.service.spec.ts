import { MetricsService } from './metrics.service';

describe('MetricsService', () => {
  it('scrapedGauge reads its value at each scrape, not when it is made', async () => {
    const metrics = new MetricsService();
    let held = 3;
    metrics.scrapedGauge('things_held', 'Things held', () => held);
    held = 4;
    expect(await metrics.render()).toMatch(/^things_held 4$/m);
    held = NaN;
    expect(await metrics.render()).toMatch(/^things_held Nan$/m);
  });
});
