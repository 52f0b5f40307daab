import { WindowCounterStorage } from './rate-limit.storage';

describe('WindowCounterStorage', () => {
  let now = 1_000_000;
  beforeEach(() => jest.spyOn(Date, 'now').mockImplementation(() => now));
  afterEach(() => jest.restoreAllMocks());

  const hit = (storage: WindowCounterStorage, key = 'ip-1') => storage.increment(key, 60_000, 3, 60_000, 'default');

  it('lets `limit` hits through in a window and blocks the next for blockDuration', async () => {
    const storage = new WindowCounterStorage();
    for (let i = 1; i <= 3; i++) expect(await hit(storage)).toMatchObject({ totalHits: i, isBlocked: false });
    expect(await hit(storage)).toMatchObject({ isBlocked: true, timeToBlockExpire: 60 });
    expect(await hit(storage, 'ip-2')).toMatchObject({ totalHits: 1, isBlocked: false }); // keys count apart
    now += 30_000;
    expect(await hit(storage)).toMatchObject({ isBlocked: true, timeToBlockExpire: 30 });
    now += 30_000;
    // The block is over, but at the start of the next window the last one's 4 hits (the refused one too) count in
    // full: still over the limit. Once they have slid out, hits go through.
    expect(await hit(storage)).toMatchObject({ totalHits: 5, isBlocked: true });
    now += 120_000;
    expect(await hit(storage)).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it("weighs the previous window's hits by the share of it still inside the last ttl", async () => {
    const storage = new WindowCounterStorage();
    await hit(storage);
    await hit(storage);
    now += 60_000 + 45_000; // three quarters into the next window: a quarter of the 2 previous hits remains
    expect(await hit(storage)).toMatchObject({ totalHits: 1, isBlocked: false, timeToExpire: 15 });
    now += 120_000; // two windows on, nothing remains
    expect(await hit(storage)).toMatchObject({ totalHits: 1, isBlocked: false });
  });
});
